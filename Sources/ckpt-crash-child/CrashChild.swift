// ckpt-crash-child: saves a deterministic checkpoint from N in-process ranks, announcing each
// phase on stdout, so a parent process can SIGKILL it at chosen points (crash-consistency tests,
// scripts/crash-soak).
//
//   ckpt-crash-child save --dir D --seed S --ranks N [--rows R] [--pause-us U] [--hold PHASE]
//                         [--hold-rank K] [--backend auto|posix|uring] [--direct 0|1]
//                         [--files-per-rank F] [--buffer-kib B] [--buffer-count C] [--overwrite]
//   ckpt-crash-child expect --seed S [--rows R]     fingerprints of the recipe's tensors
//
// Output lines: `PHASE <name>` (see PhaseCommunicator), then `DONE` (committed) or `ERROR <text>`
// (exit status 1). Usage errors exit with status 2.
import Ckpt
import CkptIO
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
}
