// ckpt-bench: how fast and how lean sharded checkpoints are on this storage, compared with the
// single-file way and with the raw device. The scenarios live in CkptBench (BenchRunner).
import ArgumentParser
import CkptBench
import CkptIO
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ckpt-bench",
        abstract: "Benchmark sharded checkpoints against the single-file way and the raw device.",
        discussion: """
            Runs, on a GPT-like training state of --size bytes sharded over --ranks in-process ranks: \
            the raw-device probe, the committed sharded save, cold loads on the same and other world \
            sizes, consolidation to one file, the single-file baseline (gather on rank 0 + torch.save) \
            and the async save. Prints a table; writes JSON, a Markdown summary and SVG charts under --out.
            """)

    @Option(help: "Save rank counts: 4, or a sweep such as 1,2,4,8.")
    var ranks: String = "4"
    @Option(help: "Load rank counts for the resharded loads (default: N, 1, 2, 3, 2N for the largest N).")
    var loadRanks: String?
    @Option(help: "Tensor bytes of the workload (binary units: 256M, 1G, 4GiB).")
    var size: String = "1G"
    @Option(name: .customLong("repeat"), help: "Repeats per scenario (median, min and max are reported).")
    var repeats: Int = 3
    @Option(help: "I/O backend: uring, posix or auto.")
    var engine: String = "auto"
    @Flag(exclusivity: .exclusive, help: "O_DIRECT I/O (default), or buffered I/O with the page cache dropped before loads.")
    var ioMode: IOModeFlag = .direct
    @Option(help: "Directory for the checkpoints (must exist; disk-backed by default).")
    var dir: String = "/var/tmp"
    @Flag(help: "Keep the checkpoints after the run.")
    var keep = false
    @Flag(help: "Print the JSON record on stdout instead of the table.")
    var json = false
    @Flag(name: .customLong("no-progress"), help: "Do not draw progress on stderr.")
    var noProgress = false
    @Option(help: "Results directory (JSON, Markdown, SVG).")
    var out: String = "results"
    @Option(help: "Label of the results directory (<timestamp>-<label>).")
    var label: String = "bench"
    @Option(help: "State mix: mixed (bf16 model + fp32 Adam), fp32-adam or bf16-model.")
    var mix: String = "mixed"
    @Option(help: "Verification of loaded bytes: sample (3 rows per chunk) or full.")
    var verify: String = "sample"
    @Option(help: "Optional scenario groups to run, comma-separated: reshard, consolidate, single-file, async, or none (default: all).")
    var only: String?
    @Flag(name: .customLong("no-raw-probe"), help: "Skip the raw-device probe (no ratios).")
    var noRawProbe = false
    @Flag(name: .customLong("no-zip-crc"), help: "Save without the zip CRC-32 of every record (torch.load does not check it).")
    var noZipCRC = false
    @Flag(name: .customLong("no-checksums"), help: "Save without the XXH3 checksum sidecar.")
    var noChecksums = false
    @Flag(help: "Print the workload as JSON (for scripts/bench-vs-torch) and exit.")
    var printWorkload = false
    @Flag(help: "Only run the raw-device probe (write with fsync, cold read) and exit.")
    var probeOnly = false
    @Option(help: ArgumentHelp(
        "Only consolidate this DCP checkpoint directory into --output (one process, timed from outside).",
        visibility: .hidden))
    var consolidate: String?
    @Option(help: ArgumentHelp("Output file of --consolidate.", visibility: .hidden))
    var output: String?
    @Option(help: ArgumentHelp("Format of --consolidate: torch or safetensors.", visibility: .hidden))
    var format: String = "torch"

    enum IOModeFlag: String, EnumerableFlag {
        case direct, buffered
    }

    func options() throws -> BenchOptions {
        do {
            let rankList = try BenchOptions.parseRankList(ranks)
            let loadList = try loadRanks.map { text throws(BenchOptionsError) in try BenchOptions.parseRankList(text) }
            let bytes = try BenchOptions.parseSize(size)
            guard let engineChoice = BenchOptions.Engine(rawValue: engine) else {
                throw ValidationError("--engine must be uring, posix or auto")
            }
            guard let stateMix = BenchStateMix(rawValue: mix) else {
                throw ValidationError("--mix must be one of \(BenchStateMix.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard verify == "sample" || verify == "full" else { throw ValidationError("--verify must be sample or full") }
            let groups = only.map { text -> Set<String> in
                text == "none" ? [] : Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            }
            if let unknown = groups?.subtracting(BenchOptions.scenarioGroups).sorted().first {
                throw ValidationError("unknown scenario group '\(unknown)' in --only (use \(BenchOptions.scenarioGroups.joined(separator: ", ")))")
            }
            return BenchOptions(
                ranks: rankList, loadRanks: loadList, sizeBytes: bytes, repeats: repeats, engine: engineChoice,
                ioMode: ioMode == .direct ? .direct : .buffered, directory: dir, keep: keep, json: json,
                outputDirectory: out, progress: !noProgress, label: label, stateMix: stateMix,
                fullVerify: verify == "full", rawProbe: !noRawProbe, only: groups,
                zipCRC32: !noZipCRC, writeChecksums: !noChecksums)
        } catch let error as BenchOptionsError {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        let options = try options()
        if RunProvenance.buildConfiguration == "debug" {
            FileHandle.standardError.write(Data(
                "warning: ckpt-bench was built in debug mode; numbers are not representative (swift run -c release ckpt-bench)\n".utf8))
        }
        if printWorkload {
            let workload = try BenchWorkload.sized(targetBytes: options.sizeBytes, mix: options.stateMix)
            print(String(decoding: try workload.manifestJSON(ranks: options.ranks.max()), as: UTF8.self))
            return
        }
        if probeOnly {
            try await probe(options)
            return
        }
        if let consolidate {
            guard let output else { throw ValidationError("--consolidate needs --output") }
            print(try await StandaloneConsolidation.run(directory: consolidate, output: output, format: format, options: options))
            return
        }
        let runner = BenchRunner(
            options: options, progress: ProgressReporter(enabled: options.progress),
            log: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) })
        let report: BenchReport
        do {
            report = try await runner.run()
        } catch let error as BenchOptionsError {
            throw ValidationError(error.description)
        }
        let written = try ResultsWriter(outputDirectory: options.outputDirectory).write(report, label: options.label)
        if options.json {
            print(String(decoding: try report.jsonData(), as: UTF8.self))
        } else {
            print(ResultsTable.render(report), terminator: "")
            print("results: \(written.directory)/summary.md")
        }
    }

    func probe(_ options: BenchOptions) async throws {
        var configuration = RawDeviceProbe.bestConfiguration
        configuration.backend = options.engine == .uring ? .ioUring : options.engine == .posix ? .posix : .automatic
        let probe = RawDeviceProbe(directory: options.directory, bytes: Int64(options.sizeBytes), configuration: configuration, measureCopy: true)
        let result = try await probe.run()
        if options.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(RawDeviceProbe.table(result))
        }
    }
}

// main.swift cannot use @main; parse and run explicitly so the async run() is the one called.
do {
    let command = try BenchCommand.parse()
    try await command.run()
} catch {
    BenchCommand.exit(withError: error)
}
