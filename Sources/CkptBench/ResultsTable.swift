import Foundation

/// The fixed-width table `ckpt-bench` prints to stdout.
public enum ResultsTable {
    /// Renders the scenarios of `report` as an aligned text table, preceded by the raw-device line.
    public static func render(_ report: BenchReport) -> String {
        var lines: [String] = []
        lines.append("workload: \(report.workload.summary)")
        lines.append(rawDeviceLine(report.rawDevice))
        lines.append("")
        let header = ["scenario", "GB/s", "% raw", "time (median)", "peak RSS", "peak extra", "notes"]
        let rows = report.scenarios.map { row(for: $0) }
        let rightAligned: Set<Int> = [1, 2, 3, 4, 5]
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func format(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return rightAligned.contains(index) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        lines.append(format(header))
        lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for row in rows { lines.append(format(row)) }
        lines.append("")
        lines.append("GB/s: decimal (1 GB = 1e9 bytes) of state bytes over the median of \(report.options.repeats) repeat(s); "
            + "% raw: against the raw device's write (saves), read (loads) or copy (consolidations) bandwidth, "
            + "measured right before each repeat (\"raw ... alongside\"; the line above is the run's first probe); "
            + "\"replayed raw\": the device reading exactly a load's requests after each repeat.")
        if !report.targets.isEmpty {
            lines.append("")
            lines.append("targets:")
            let width = report.targets.map(\.name.count).max() ?? 0
            for check in report.targets {
                let pad = String(repeating: " ", count: width - check.name.count)
                lines.append("  \(check.met ? "met " : "MISS") \(check.name)\(pad)  \(check.measured) (target \(check.target))")
            }
        }
        for note in report.notes {
            lines.append("note: \(note)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The cells of one scenario row.
    static func row(for scenario: ScenarioResult) -> [String] {
        [
            scenario.name,
            String(format: "%.2f", scenario.throughputGBps),
            scenario.rawDeviceRatio.map { String(format: "%.0f%%", $0 * 100) } ?? "-",
            ByteFormat.seconds(scenario.time.median),
            scenario.peakRSSBytes.map(ByteFormat.binary) ?? "-",
            scenario.peakExtraBytes.map(ByteFormat.binary) ?? "-",
            notes(for: scenario),
        ]
    }

    /// Derived remarks (read amplification, async split, phases) followed by the scenario's notes.
    static func notes(for scenario: ScenarioResult) -> String {
        var parts: [String] = []
        if let ranks = scenario.ranks {
            if let loadRanks = scenario.loadRanks, loadRanks != ranks {
                parts.append("\(ranks)->\(loadRanks) ranks")
            } else {
                parts.append("\(ranks) rank\(ranks == 1 ? "" : "s")")
            }
        }
        if let raw = scenario.adjacentRawGBps {
            parts.append("raw \(scenario.direction.rawMeasurement) alongside \(ByteFormat.rate(raw))")
        }
        if let amplification = scenario.readAmplification {
            parts.append(String(format: "read %.2fx needed", amplification))
        }
        if let blocked = scenario.callerBlocked {
            parts.append("caller blocked \(ByteFormat.seconds(blocked.median))")
        }
        if let commit = scenario.commit {
            parts.append("commit \(ByteFormat.seconds(commit.median))")
        }
        if !scenario.phases.isEmpty {
            parts.append(scenario.phases.map { "\($0.name) \(ByteFormat.seconds($0.time.median))" }.joined(separator: " + "))
        }
        if let pool = scenario.engineBufferPeakBytes {
            parts.append("buffers \(ByteFormat.binary(pool))")
        }
        parts.append(contentsOf: scenario.notes)
        return parts.joined(separator: "; ")
    }

    static func rawDeviceLine(_ reference: RawDeviceReference?) -> String {
        guard let reference else { return "raw device: not measured" }
        func spread(_ stats: RepeatStatistics?) -> String {
            guard let stats, stats.samples.count > 1, stats.min > 0 else { return "" }
            let fast = ScenarioResult.gigabytesPerSecond(bytes: reference.bytes, seconds: stats.min)
            let slow = ScenarioResult.gigabytesPerSecond(bytes: reference.bytes, seconds: stats.max)
            return String(format: " [%.2f..%.2f]", slow, fast)
        }
        let write = (reference.writeGBps.map(ByteFormat.rate) ?? "n/a") + spread(reference.write)
        let read = (reference.readGBps.map(ByteFormat.rate) ?? "n/a") + spread(reference.read)
        let copy = reference.copyGBps.map { ", copy \(ByteFormat.rate($0))\(spread(reference.copy))" } ?? ""
        return "raw device: write \(write), read \(read)\(copy) (\(reference.method), \(ByteFormat.binary(reference.bytes)))"
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
