import Foundation

/// The Markdown summary of a run: headline numbers, the table, the charts, the command and the machine.
public enum MarkdownSummary {
    /// File names of the charts, relative to the summary.
    public static let chartFiles = (throughput: "throughput.svg", memory: "memory.svg", ranks: "ranks.svg")

    /// Renders `report`; chart links are prefixed with `linkPrefix` (e.g. a run directory name).
    public static func render(_ report: BenchReport, linkPrefix: String = "") -> String {
        var out: [String] = []
        out.append("# ckpt-bench: \(report.provenance.date)")
        out.append("")
        out.append(contentsOf: headlines(report).map { "- " + $0 })
        out.append("")
        out.append("## Results")
        out.append("")
        out.append("| scenario | GB/s | % of raw | time (median) | min..max | peak RSS | peak extra | notes |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for scenario in report.scenarios {
            let cells = ResultsTable.row(for: scenario)
            let range = "\(ByteFormat.seconds(scenario.time.min))..\(ByteFormat.seconds(scenario.time.max))"
            let row = [cells[0], cells[1], cells[2], cells[3], range, cells[4], cells[5], cells[6]]
            out.append("| " + row.map(escape).joined(separator: " | ") + " |")
        }
        out.append("")
        out.append("GB/s are decimal (1 GB = 10^9 bytes): bytes moved over the median of "
            + "\(report.options.repeats) repeat(s). \"% of raw\" compares saves with the raw device's write "
            + "bandwidth, loads with its read bandwidth and consolidations (which read the checkpoint while "
            + "writing the file) with its copy bandwidth, each measured right before every repeat of the scenario "
            + "(\"raw ... alongside\" in the notes), so that the virtual disk's drift during the run cancels out. "
            + "After each repeat of a load, the device also replays that load's data reads (same files, offsets, "
            + "lengths and queue depth per rank, cold, nothing decoded: \"replayed raw\" in the notes): the device's "
            + "speed at the load's own request pattern, where the probe's 4 MiB reads are the best case.")
        if !report.targets.isEmpty {
            out.append("")
            out.append("## Targets")
            out.append("")
            out.append("| check | target | measured | met |")
            out.append("|---|---:|---:|---|")
            for check in report.targets {
                out.append("| \(escape(check.name)) | \(escape(check.target)) | \(escape(check.measured)) | \(check.met ? "yes" : "**no**") |")
            }
        }
        out.append("")
        out.append("## Charts")
        out.append("")
        out.append("![Throughput per scenario](\(linkPrefix)\(chartFiles.throughput))")
        out.append("")
        out.append("![Peak memory per scenario](\(linkPrefix)\(chartFiles.memory))")
        if !report.rankSweep.isEmpty {
            out.append("")
            out.append("![Throughput versus ranks](\(linkPrefix)\(chartFiles.ranks))")
        }
        out.append("")
        out.append("## Run")
        out.append("")
        out.append("```")
        out.append(report.provenance.commandLine)
        out.append("```")
        out.append("")
        out.append("- Date: \(report.provenance.date)")
        out.append("- Build: \(report.provenance.buildConfiguration)"
            + (report.provenance.gitCommit.map { ", commit `\($0)`" } ?? ""))
        out.append("- Workload: \(report.workload.summary)")
        let options = report.options
        out.append("- Options: ranks \(options.ranks.map(String.init).joined(separator: ",")), "
            + "engine \(options.engine.rawValue), \(options.ioMode.rawValue) I/O, \(options.repeats) repeat(s), "
            + "dir `\(options.directory)`")
        out.append("- Machine: \(report.machine.summary)")
        if let storage = report.machine.storage {
            out.append("- Storage: \(storage.summary)")
        }
        out.append("- " + ResultsTable.rawDeviceLine(report.rawDevice).capitalizedFirst)
        if !report.notes.isEmpty {
            out.append("")
            out.append("## Notes")
            out.append("")
            out.append(contentsOf: report.notes.map { "- " + $0 })
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// One-line findings: the fastest save and load against the raw device, the spread between
    /// the fastest and slowest save, and the lowest peak extra memory.
    public static func headlines(_ report: BenchReport) -> [String] {
        var lines: [String] = []
        let saves = report.scenarios.filter { $0.direction == .save }
        let loads = report.scenarios.filter { $0.direction == .load }
        if let best = saves.max(by: { $0.throughputGBps < $1.throughputGBps }) {
            lines.append("Fastest save: **\(best.name)** at **\(ByteFormat.rate(best.throughputGBps))**"
                + percent(best.rawDeviceRatio, "raw write"))
            let checkpointSaves = saves.filter { $0.group != "consolidation" }
            if let worst = checkpointSaves.min(by: { $0.throughputGBps < $1.throughputGBps }), worst.name != best.name,
                worst.throughputGBps > 0
            {
                lines.append("\(best.name) is "
                    + String(format: "%.1fx", best.throughputGBps / worst.throughputGBps)
                    + " as fast as the slowest save, \(worst.name) (\(ByteFormat.rate(worst.throughputGBps)))")
            }
        }
        if let best = loads.max(by: { $0.throughputGBps < $1.throughputGBps }) {
            lines.append("Fastest load: **\(best.name)** at **\(ByteFormat.rate(best.throughputGBps))**"
                + percent(best.rawDeviceRatio, "raw read"))
        }
        let copies = report.scenarios.filter { $0.direction == .copy }
        if let best = copies.max(by: { $0.throughputGBps < $1.throughputGBps }) {
            lines.append("Fastest consolidation: **\(best.name)** at **\(ByteFormat.rate(best.throughputGBps))**"
                + percent(best.rawDeviceRatio, "a raw copy"))
        }
        let measured = report.scenarios.filter { $0.peakExtraBytes != nil }
        if let lean = measured.min(by: { ($0.peakExtraBytes ?? 0) < ($1.peakExtraBytes ?? 0) }),
            let extra = lean.peakExtraBytes
        {
            let share = report.workload.totalBytes > 0
                ? String(format: " (%.0f%% of the %@ state)", Double(extra) / Double(report.workload.totalBytes) * 100,
                    ByteFormat.binary(report.workload.totalBytes))
                : ""
            lines.append("Lowest peak extra memory: \(lean.name), \(ByteFormat.binary(extra))\(share)")
        }
        lines.append(ResultsTable.rawDeviceLine(report.rawDevice).capitalizedFirst)
        return lines
    }

    private static func percent(_ ratio: Double?, _ what: String) -> String {
        guard let ratio else { return "" }
        return String(format: " (%.0f%% of %@)", ratio * 100, what)
    }

    private static func escape(_ cell: String) -> String {
        cell.replacingOccurrences(of: "|", with: "\\|")
    }
}

extension String {
    var capitalizedFirst: String {
        guard let first else { return self }
        return first.uppercased() + dropFirst()
    }
}
