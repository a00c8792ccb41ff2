// ckpt-crash-child: saves a deterministic checkpoint from N in-process ranks, announcing each
// phase on stdout, so a parent process can SIGKILL it at chosen points (crash-consistency tests,
// scripts/crash-soak).
//
//   ckpt-crash-child save --dir D --seed S --ranks N [--rows R] [--pause-us U] [--hold PHASE]
//                         [--hold-rank K] [--backend auto|posix|uring] [--direct 0|1]
//                         [--files-per-rank F] [--buffer-kib B] [--buffer-count C] [--overwrite]
//   ckpt-crash-child expect --seed S [--rows R]     fingerprints of the recipe's tensors
//   ckpt-crash-child load --dir D --seed S [--rows R] [--verify 0|1] [--reader 0|1]
//       loads the recipe's tensors and values (one rank, whole tensors) with Checkpointer.load
//       or CheckpointReader: prints `LOADED match`, `LOADED differs <what>` or `ERROR <code> <text>`
//       (hostile-input tests run loads here, so that a trap cannot take the test process down)
//   ckpt-crash-child parse --parser pickle|metadata|byteio|torchsave|record|zip|safetensors --file F
//       runs one parser over a file: prints `ACCEPTED` or `REJECTED <code> <message>`
//
// Output lines: `PHASE <name>` (see PhaseCommunicator), then `DONE` (committed) or `ERROR <text>`
// (exit status 1). Usage errors exit with status 2.
import Ckpt
import CkptFormat
import CkptIO
import CkptTestSupport
import Foundation
import Glibc

@main
struct CrashChild {
    static func say(_ text: String) {
        let line = text + "\n"
        _ = line.withCString { write(1, $0, strlen($0)) }
    }

    static func usage(_ message: String) -> Never {
        let line = "ckpt-crash-child: \(message)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        exit(2)
    }

    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard let command = arguments.first else { usage("expected a command: save or expect") }
        arguments.removeFirst()
        var options: [String: String] = [:]
        var flags: Set<String> = []
        var i = 0
        while i < arguments.count {
            let name = arguments[i]
            guard name.hasPrefix("--") else { usage("unexpected argument '\(name)'") }
            if name == "--overwrite" {
                flags.insert(name)
                i += 1
                continue
            }
            guard i + 1 < arguments.count else { usage("\(name) needs a value") }
            options[String(name.dropFirst(2))] = arguments[i + 1]
            i += 2
        }

        let parsed = options
        func integer(_ name: String, default value: Int? = nil) -> Int {
            let options = parsed
            guard let text = options[name] else {
                guard let value else { usage("--\(name) is required") }
                return value
            }
            guard let parsed = Int(text) else { usage("--\(name) expects an integer, got '\(text)'") }
            return parsed
        }

        if command == "parse" {
            guard let parser = options["parser"], let file = options["file"] else { usage("parse needs --parser and --file") }
            parse(parser: parser, file: file)
            exit(0)
        }
        let seed = UInt64(integer("seed"))
        let rows = integer("rows", default: 4096)

        switch command {
        case "expect":
            for tensor in CrashRecipe.tensors(seed: seed, rows: rows) {
                say("TENSOR \(tensor.fqn) \(String(CrashRecipe.fingerprint(tensor.bytes), radix: 16))")
            }
            exit(0)
        case "save":
            break
        case "load":
            guard let directory = options["dir"] else { usage("--dir is required") }
            await load(
                directory: directory, seed: seed, rows: rows, verify: integer("verify", default: 0) != 0,
                reader: integer("reader", default: 0) != 0)
            exit(0)
        default:
            usage("unknown command '\(command)'")
        }

        guard let directory = options["dir"] else { usage("--dir is required") }
        let ranks = integer("ranks")
        guard (1...64).contains(ranks) else { usage("--ranks must be in 1...64") }
        let backend: IOEngineConfiguration.BackendChoice
        switch options["backend"] ?? "auto" {
        case "auto": backend = .automatic
        case "posix": backend = .posix
        case "uring": backend = .ioUring
        case let other: usage("--backend expects auto, posix or uring, got '\(other)'")
        }
        let checkpointOptions = CheckpointOptions(
            filesPerRank: integer("files-per-rank", default: 1), direct: integer("direct", default: 1) != 0,
            directPayloadThreshold: 64 << 10, overwrite: flags.contains("--overwrite"))
        let pause = UInt32(integer("pause-us", default: 0))
        let hold = options["hold"]
        let holdRank = options["hold-rank"].flatMap { Int($0) }

        let states = (0..<ranks).map { CrashRecipe.state(seed: seed, rows: rows, rank: $0, ranks: ranks) }
        say("PHASE start")
        do {
            let engine = try IOEngine(configuration: IOEngineConfiguration(
                backend: backend, queueDepth: 16, bufferSize: integer("buffer-kib", default: 64) << 10,
                bufferCount: integer("buffer-count", default: 32)))
            let group = InProcessGroup(worldSize: ranks)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for rank in 0..<ranks {
                    tasks.addTask {
                        let communicator = PhaseCommunicator(
                            inner: group.communicator(rank: rank), pauseMicroseconds: pause, hold: hold, holdRank: holdRank)
                        _ = try await Checkpointer(engine: engine, communicator: communicator, options: checkpointOptions)
                            .save(states[rank], to: directory)
                    }
                }
                try await tasks.waitForAll()
            }
            await engine.shutdown()
            say("DONE")
            exit(0)
        } catch {
            say("ERROR \(String(describing: error).split(separator: "\n").joined(separator: " | "))")
            exit(1)
        }
    }

    /// Loads the recipe's state from `directory` and reports what came back.
    static func load(directory: String, seed: UInt64, rows: Int, verify: Bool, reader: Bool) async {
        let tensors = CrashRecipe.tensors(seed: seed, rows: rows)
        let values = CrashRecipe.values(seed: seed)
        var request = StateDict()
        for tensor in tensors {
            request.set(tensor.fqn, .tensor(.whole(
                dtype: tensor.dtype, shape: tensor.shape, buffer: TensorBuffer(byteCount: tensor.bytes.count))))
        }
        for (fqn, _) in values { request.set(fqn, .value(.none)) }
        do {
            let engine = try IOEngine(configuration: IOEngineConfiguration(bufferSize: 64 << 10, bufferCount: 16))
            let options = CheckpointOptions(verifyChecksums: verify)
            let report: LoadReport
            if reader {
                report = try await CheckpointReader(directory: directory, engine: engine, options: options).load(into: request)
            } else {
                let group = InProcessGroup(worldSize: 1)
                report = try await Checkpointer(engine: engine, communicator: group.communicator(rank: 0), options: options)
                    .load(into: request, from: directory)
            }
            await engine.shutdown()
            for tensor in tensors {
                guard case .tensor(let entry)? = request[tensor.fqn], let chunk = entry.chunks.first,
                    tensor.bytes.elementsEqual(UnsafeRawBufferPointer(chunk.buffer.bytes))
                else {
                    say("LOADED differs \(tensor.fqn)")
                    return
                }
            }
            for (fqn, value) in values where report.values[fqn] != value {
                say("LOADED differs \(fqn)")
                return
            }
            say("LOADED match")
        } catch let error as CheckpointError {
            say("ERROR \(error.code.rawValue) \(String(describing: error).split(separator: "\n").joined(separator: " | "))")
        } catch {
            say("ERROR other \(String(describing: error).split(separator: "\n").joined(separator: " | "))")
        }
    }

    /// Runs one parser of untrusted bytes over a file and prints the outcome.
    static func parse(parser: String, file: String) {
        guard let data = FileManager.default.contents(atPath: file) else { usage("cannot read \(file)") }
        let bytes = [UInt8](data)
        let clock = ContinuousClock()
        let start = clock.now
        defer {
            let elapsed = clock.now - start
            let milliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
            say("STATS ms=\(milliseconds) peakKiB=\(peakKiB())")
        }
        do {
            switch parser {
            case "pickle": _ = try PickleReader().decode(bytes)
            case "metadata": _ = try DCPMetadata(decoding: bytes)
            case "byteio": _ = try ByteIORecord.decode(bytes)
            case "torchsave": _ = try TorchSaveFile(parsing: bytes)
            case "record": _ = try TorchTensorRecord.read(bytes)
            case "zip": _ = try ZipArchive(parsing: bytes)
            case "safetensors": _ = try SafetensorsHeader.parse(bytes)
            default: usage("unknown parser '\(parser)'")
            }
            say("ACCEPTED")
        } catch {
            say("REJECTED \(error.code.rawValue) \(error.message)")
        }
    }

    /// Peak resident set size (VmHWM) in KiB.
    static func peakKiB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        }
        return -1
    }
}
