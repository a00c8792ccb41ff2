import Foundation

/// Writes a run's results: `<out>/<timestamp>-<label>/{result.json, summary.md, throughput.svg,
/// memory.svg, ranks.svg}`, then refreshes `<out>/latest.md` (the newest summary, links adjusted)
/// and appends the run to `<out>/index.md`.
public struct ResultsWriter: Sendable {
    /// The results root (`--out`).
    public var outputDirectory: String

    /// Where a run's files went.
    public struct Written: Sendable, Hashable {
        /// The run directory.
        public var directory: String
        /// Paths of every file written or updated, run files first.
        public var files: [String]
    }

    /// Creates a writer for `outputDirectory` (created when missing).
    public init(outputDirectory: String) {
        self.outputDirectory = outputDirectory
    }

    /// The run directory name for `date` and `label`, e.g. `20261125T145515Z-bench`.
    public static func runDirectoryName(date: Date, label: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let safeLabel = String(label.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" })
        return formatter.string(from: date) + "-" + (safeLabel.isEmpty ? "bench" : safeLabel)
    }

    /// Writes every file of `report`. An existing run directory of the same name gets a `-2`, `-3`... suffix.
    @discardableResult
    public func write(_ report: BenchReport, label: String, date: Date = Date()) throws(ResultsWriterError) -> Written {
        let manager = FileManager.default
        let base = Self.runDirectoryName(date: date, label: label)
        var name = base
        var suffix = 2
        while manager.fileExists(atPath: outputDirectory + "/" + name) {
            name = "\(base)-\(suffix)"
            suffix += 1
        }
        let directory = outputDirectory + "/" + name
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ResultsWriterError(path: directory, message: "\(error)")
        }
        let json: Data
        do {
            json = try report.jsonData()
        } catch {
            throw ResultsWriterError(path: directory + "/result.json", message: "encoding failed: \(error)")
        }
        let files: [(String, Data)] = [
            ("result.json", json),
            ("summary.md", Data(MarkdownSummary.render(report).utf8)),
            (MarkdownSummary.chartFiles.throughput, Data(BenchCharts.throughput(report).utf8)),
            (MarkdownSummary.chartFiles.memory, Data(BenchCharts.memory(report).utf8)),
            (MarkdownSummary.chartFiles.ranks, Data(BenchCharts.ranks(report).utf8)),
        ]
        var written: [String] = []
        for (file, data) in files {
            let path = directory + "/" + file
            try Self.write(data, to: path)
            written.append(path)
        }
        let latest = outputDirectory + "/latest.md"
        try Self.write(Data(MarkdownSummary.render(report, linkPrefix: name + "/").utf8), to: latest)
        written.append(latest)
        let index = outputDirectory + "/index.md"
        try Self.appendIndexLine(report, runName: name, to: index)
        written.append(index)
        return Written(directory: directory, files: written)
    }

    private static func write(_ data: Data, to path: String) throws(ResultsWriterError) {
        do {
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ResultsWriterError(path: path, message: "\(error)")
        }
    }

    private static func appendIndexLine(_ report: BenchReport, runName: String, to path: String) throws(ResultsWriterError) {
        var text = (try? String(contentsOfFile: path, encoding: .utf8))
            ?? "# ckpt-bench runs\n\nNewest last. Throughput in decimal GB/s (median).\n\n"
        let bestSave = report.scenarios.filter { $0.direction == .save }.map(\.throughputGBps).max()
        let bestLoad = report.scenarios.filter { $0.direction == .load }.map(\.throughputGBps).max()
        var line = "- [\(runName)](\(runName)/summary.md): \(ByteFormat.binary(report.workload.totalBytes)), "
            + "ranks \(report.options.ranks.map(String.init).joined(separator: ","))"
        if let bestSave { line += ", best save \(ByteFormat.rate(bestSave))" }
        if let bestLoad { line += ", best load \(ByteFormat.rate(bestLoad))" }
        if let raw = report.rawDevice {
            line += ", raw write \(raw.writeGBps.map(ByteFormat.rate) ?? "n/a") / read \(raw.readGBps.map(ByteFormat.rate) ?? "n/a")"
        }
        line += ", \(report.provenance.buildConfiguration)"
        if !text.hasSuffix("\n") { text += "\n" }
        text += line + "\n"
        try write(Data(text.utf8), to: path)
    }
}
