import ArgumentParser
import Ckpt
import CkptIO
import Foundation

/// `ckpt`: inspect, verify, consolidate, reshard and convert checkpoints. A thin shell: the logic
/// lives in the `Ckpt` library (Sources/Ckpt/Tools).
@main
struct CkptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ckpt",
        abstract: "Inspect, verify, consolidate, reshard and convert PyTorch distributed checkpoints (DCP).",
        discussion: """
            Works on checkpoint directories written by torch.distributed.checkpoint (dcp.save), by \
            Lightning's FSDP strategy, or by ckpt. Outputs are written under a temporary name and \
            renamed at the end: a failure leaves nothing under the output name.

            Examples:
              ckpt inspect run/step-1000
              ckpt verify run/step-1000
              ckpt consolidate run/step-1000      (writes run/step-1000.consolidated)
              ckpt consolidate run/step-1000 --format safetensors -o model.st
              ckpt reshard run/step-1000 --ranks 8 run/step-1000-8ranks
              ckpt convert model.pt run/converted --ranks 4
            """,
        subcommands: [Inspect.self, Verify.self, Consolidate.self, Reshard.self, Convert.self])
}

/// Flags every subcommand takes.
struct SharedOptions: ParsableArguments {
    @Flag(name: .customLong("no-progress"), help: "Do not draw progress bars on stderr (drawn only when stderr is a terminal).")
    var noProgress = false

    @Option(name: .customLong("piece-mib"), help: "Size of the buffer tensors are streamed through, in MiB.")
    var pieceMiB = 64

    func validate() throws {
        guard (1...1024).contains(pieceMiB) else { throw ValidationError("--piece-mib must be between 1 and 1024") }
    }

    /// The engine; `bufferCount` pool buffers when given (a consolidation's streaming buffers).
    func engine(bufferCount: Int? = nil) throws -> IOEngine {
        var configuration = IOEngineConfiguration()
        if let bufferCount { configuration.bufferCount = max(configuration.bufferCount, bufferCount) }
        return try IOEngine(configuration: configuration)
    }

    func progress(_ label: String) -> ToolProgress { ToolProgress(label: label, enabled: !noProgress) }

    var pieceBytes: Int { pieceMiB << 20 }
}

/// Runs `body` with an engine; prints a one-line error and exits non-zero on failure.
func runTool(_ options: SharedOptions, bufferCount: Int? = nil, _ body: (IOEngine) async throws -> Int32) async throws {
    let engine: IOEngine
    do {
        engine = try options.engine(bufferCount: bufferCount)
    } catch {
        printError("cannot start the I/O engine: \(ToolError.oneLine(error))")
        throw ExitCode(1)
    }
    let code: Int32
    do {
        code = try await body(engine)
    } catch {
        await engine.shutdown()
        printError(ToolError.oneLine(error))
        throw ExitCode(1)
    }
    await engine.shutdown()
    if code != 0 { throw ExitCode(code) }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("ckpt: error: \(message)\n".utf8))
}

extension CkptCommand {
    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what a checkpoint holds: tensors, values, files, world size, format.",
            discussion: """
                Lists every tensor (dtype, global shape, chunks, files, bytes) and every non-tensor \
                value (decoded with the safe unpickler, shown as a short repr), the data files, \
                the world size the checkpoint was saved with, whether it has ckpt checksums and a \
                Lightning meta.pt, and the record format (torch_save or safetensors).

                Examples:
                  ckpt inspect run/step-1000
                  ckpt inspect run/step-1000 --json | jq '.tensors[] | .fqn'
                """)

        @Argument(help: "Checkpoint directory.") var directory: String
        @Flag(help: "Print JSON instead of a table.") var json = false
        @OptionGroup var options: SharedOptions

        func run() async throws {
            try await runTool(options) { engine in
                let inspection = try await CheckpointInspection.inspect(directory, engine: engine)
                print(json ? try inspection.json() : inspection.table())
                return 0
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a checkpoint's structure and (with ckpt checksums) its content.",
            discussion: """
                Checks that every chunk's file exists and is long enough, that chunks tile each \
                tensor exactly once, that every record parses and agrees with .metadata, that values \
                decode, and, when a .ckpt-checksums.json of this save exists, the XXH3 of every \
                payload. Reports every problem with its file and offset. Exit status 0 only when \
                everything holds, 1 otherwise.

                Examples:
                  ckpt verify run/step-1000
                  ckpt verify run/step-1000 --json --max-problems 1000
                """)

        @Argument(help: "Checkpoint directory.") var directory: String
        @Flag(help: "Print the report as JSON.") var json = false
        @Option(help: "List at most this many problems (the rest are counted).") var maxProblems = 100
        @OptionGroup var options: SharedOptions

        func validate() throws {
            guard maxProblems >= 1 else { throw ValidationError("--max-problems must be at least 1") }
        }

        func run() async throws {
            try await runTool(options) { engine in
                let verifier = CheckpointVerifier(engine: engine, pieceBytes: min(options.pieceBytes, 8 << 20), maxProblems: maxProblems)
                let report = try await verifier.verify(directory, progress: options.progress("verify"))
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    print(String(decoding: try encoder.encode(report), as: UTF8.self))
                } else {
                    for problem in report.problems { print("PROBLEM \(problem)") }
                    if report.omittedProblems > 0 { print("... and \(report.omittedProblems) more problems") }
                    let content = report.hasChecksums
                        ? "\(report.checksumsVerified) checksums verified"
                        : "no ckpt checksums: content not verified"
                    let count = report.problems.count + report.omittedProblems
                    print("\(report.isValid ? "OK" : "FAILED") \(directory): \(report.tensorRecords) tensor records, \(report.valueRecords) values, \(ByteCount.format(report.bytesHashed)) read, \(content)\(report.isValid ? "" : ", \(count) problem\(count == 1 ? "" : "s")")")
                }
                return report.isValid ? 0 : 1
            }
        }
    }

    struct Consolidate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a sharded checkpoint as one torch.save or safetensors file.",
            discussion: """
                Like Lightning's `python -m lightning.pytorch.utilities.consolidate_checkpoint DIR` \
                (and PyTorch's dcp_to_torch_save): the output loads with \
                torch.load(path, weights_only=True). A Lightning folder's meta.pt is merged as \
                Lightning does. Streams with bounded memory (about --piece-mib plus 64 MiB). \
                Default output: DIR.consolidated (torch) or DIR.safetensors (safetensors; non-tensor \
                values are left out).

                Examples:
                  ckpt consolidate lightning_logs/version_0/checkpoints/epoch=1.ckpt
                  ckpt consolidate run/step-1000 --format safetensors -o model.st
                """)

        @Argument(help: "Checkpoint directory.") var directory: String
        @Option(name: .shortAndLong, help: "Output file (default: DIR.consolidated, or DIR.safetensors).") var output: String?
        @Option(help: "Output format: torch or safetensors.") var format: String = "torch"
        @Flag(help: "Replace an existing output file.") var overwrite = false
        @OptionGroup var options: SharedOptions

        func validate() throws {
            guard ConsolidationFormat(rawValue: format) != nil else {
                throw ValidationError("--format must be 'torch' or 'safetensors', got '\(format)'")
            }
        }

        func run() async throws {
            let format = ConsolidationFormat(rawValue: self.format) ?? .torchSave
            let output = self.output ?? format.defaultOutput(for: directory)
            try await runTool(options, bufferCount: Consolidator.streamPoolBuffers(pieceBytes: options.pieceBytes)) { engine in
                let progress = options.progress("consolidate")
                let report = try await Consolidator(engine: engine, pieceBytes: options.pieceBytes)
                    .consolidate(directory, to: output, format: format, overwrite: overwrite) { done, total in
                        progress.update(done: done, total: total)
                    }
                progress.finish()
                var line = "wrote \(report.output): \(report.tensorCount) tensors, \(report.valueCount) values, \(ByteCount.format(report.fileBytes))"
                if report.mergedLightningMeta { line += ", Lightning meta.pt merged" }
                line += report.streamed ? "; streamed from whole windows of the data files" : "; copied tensor by tensor"
                if !report.skippedValues.isEmpty { line += "; left out \(report.skippedValues.count) non-tensor values (safetensors holds tensors only)" }
                print(line)
                return 0
            }
        }
    }

    struct Reshard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrite a checkpoint as if saved by another number of ranks.",
            discussion: """
                Every tensor is split evenly into rows along dim 0 as torch.chunk does (--ranks M), \
                or laid out like a template checkpoint (--like TEMPLATE_DIR). Offline, streaming, \
                bounded memory; the output carries ckpt checksums and loads with PyTorch's dcp.load.

                Examples:
                  ckpt reshard run/step-1000 --ranks 8 run/step-1000-8ranks
                  ckpt reshard run/step-1000 --like run-64gpu/step-0 run/step-1000-64
                """)

        @Argument(help: "Checkpoint directory.") var directory: String
        @Argument(help: "Output directory (must not exist).") var output: String
        @Option(help: "Number of ranks of the output.") var ranks: Int?
        @Option(help: "Copy the chunk layout of this checkpoint.") var like: String?
        @Flag(help: "Replace an existing output directory.") var overwrite = false
        @OptionGroup var options: SharedOptions

        func validate() throws {
            switch (ranks, like) {
            case (nil, nil): throw ValidationError("give --ranks M or --like TEMPLATE_DIR")
            case (let m?, nil) where m < 1: throw ValidationError("--ranks must be at least 1")
            case (_?, _?): throw ValidationError("--ranks and --like exclude each other")
            default: break
            }
        }

        func run() async throws {
            let layout: ReshardLayout = like.map { .like(template: $0) } ?? .rowSplit(ranks: ranks ?? 1)
            try await runTool(options) { engine in
                let report = try await Resharder(engine: engine, pieceBytes: options.pieceBytes)
                    .reshard(directory, to: output, layout: layout, overwrite: overwrite, progress: options.progress("reshard"))
                print("wrote \(report.output): \(report.ranks) ranks, \(report.tensorCount) tensors (\(report.chunkCount) chunks, \(ByteCount.format(report.tensorBytes))), \(report.valueCount) values")
                return 0
            }
        }
    }

    struct Convert: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Turn a torch.save or safetensors file into a DCP checkpoint.",
            discussion: """
                Like PyTorch's torch_save_to_dcp: the state dict is flattened as dcp.save flattens \
                it, and every tensor is split into rows over --ranks ranks. Streams from the input \
                (only its zip directory and data.pkl are read whole).

                Examples:
                  ckpt convert model.pt run/from-pt --ranks 4
                  ckpt convert model.safetensors run/from-st
                """)

        @Argument(help: "Input file (torch.save archive or safetensors).") var input: String
        @Argument(help: "Output directory (must not exist).") var output: String
        @Option(help: "Number of ranks of the output.") var ranks = 1
        @Flag(help: "Replace an existing output directory.") var overwrite = false
        @OptionGroup var options: SharedOptions

        func validate() throws {
            guard ranks >= 1 else { throw ValidationError("--ranks must be at least 1") }
        }

        func run() async throws {
            try await runTool(options) { engine in
                let report = try await CheckpointConverter(engine: engine, pieceBytes: options.pieceBytes)
                    .convert(input, to: output, ranks: ranks, overwrite: overwrite, progress: options.progress("convert"))
                print("wrote \(report.output): \(report.ranks) ranks, \(report.tensorCount) tensors (\(ByteCount.format(report.tensorBytes))), \(report.valueCount) values from a \(report.inputFormat) file")
                return 0
            }
        }
    }
}
