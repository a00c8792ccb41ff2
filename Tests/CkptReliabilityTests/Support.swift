import Ckpt
import CkptFormat
import CkptIO
import CkptTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// Runs a blocking function on its own thread (not the cooperative pool, which has as few
/// threads as cores) and returns its result.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    var seconds: Double
    var what: String
    var description: String { "\(what) did not finish within \(seconds) s (hang?)" }
}

/// Runs `body`, failing with ``TimeoutError`` when it takes longer than `seconds`. On timeout
/// the body is cancelled and abandoned (a hung body cannot hang the test).
func withTimeout<T: Sendable>(
    _ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = OnceBox<CheckedContinuation<T, any Error>>()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        once.put(continuation)
        let work = Task {
            let result = await Result(catching: { try await body() })
            once.take()?.resume(with: result)
        }
        Task {
            try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            if let waiting = once.take() {
                work.cancel()
                waiting.resume(throwing: TimeoutError(seconds: seconds, what: what))
            }
        }
    }
}

/// A value taken at most once, from any thread.
final class OnceBox<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    func put(_ v: Value) { value.withLock { $0 = v } }
    func take() -> Value? { value.withLock { $0.take() } }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

/// A scratch directory, removed by `cleanup()`: on tmpfs (`/dev/shm`, where fsync is cheap and
/// O_DIRECT works on recent kernels) when `fast` and there is one, else in the temporary
/// directory. The fault sweeps run hundreds of saves: their subject is the engine's handling of
/// faults, not the device.
struct ScratchDir: Sendable {
    let path: String

    init(_ label: String, fast: Bool = false) {
        let shm = "/dev/shm"
        let base = fast && access(shm, W_OK) == 0 ? shm : FileManager.default.temporaryDirectory.path
        path = base + "/\(label)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Open file descriptors of this process.
func openDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// Peak resident set size of this process (VmHWM), in KiB.
func peakRSSKiB() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }
    return -1
}

/// Current resident set size (VmRSS), in KiB.
func currentRSSKiB() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }
    return -1
}

func readFile(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func fileExists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

/// A request state dict holding whole, zeroed tensors of the recipe's shapes and its values.
func wholeRequest(_ tensors: [CrashRecipe.Tensor], values: [String]) -> StateDict {
    var state = StateDict()
    for tensor in tensors {
        state.set(tensor.fqn, .tensor(.whole(
            dtype: tensor.dtype, shape: tensor.shape, buffer: TensorBuffer(byteCount: tensor.bytes.count))))
    }
    for fqn in values { state.set(fqn, .value(.none)) }
    return state
}

/// What loading a checkpoint directory gave.
enum LoadOutcome: CustomStringConvertible {
    /// Loaded; every tensor and value equals the recipe's.
    case matches
    /// Loaded, but something differs from the recipe (never acceptable).
    case wrongData(String)
    /// Refused with this error.
    case refused(any Error)

    var description: String {
        switch self {
        case .matches: return "matches"
        case .wrongData(let what): return "WRONG DATA: \(what)"
        case .refused(let error): return "refused: \(error)"
        }
    }
}

/// Loads `directory` on one rank (whole tensors) and compares with the recipe for `seed`.
func loadAndCompare(
    _ directory: String, seed: UInt64, rows: Int, engine: IOEngine, verifyChecksums: Bool
) async -> LoadOutcome {
    let tensors = CrashRecipe.tensors(seed: seed, rows: rows)
    let values = CrashRecipe.values(seed: seed)
    let request = wholeRequest(tensors, values: values.map(\.0))
    let report: LoadReport
    do {
        report = try await withTimeout(120, "load of \(directory)") {
            try await onRanks(1) { comm in
                try await Checkpointer(
                    engine: engine, communicator: comm, options: CheckpointOptions(verifyChecksums: verifyChecksums)
                ).load(into: request, from: directory)
            }[0]
        }
    } catch {
        return .refused(error)
    }
    for tensor in tensors {
        guard case .tensor(let entry)? = request[tensor.fqn], let chunk = entry.chunks.first else {
            return .wrongData("\(tensor.fqn) missing from the request")
        }
        let same = tensor.bytes.withUnsafeBytes { want in
            want.count == chunk.buffer.count && want.elementsEqual(UnsafeRawBufferPointer(chunk.buffer.bytes))
        }
        if !same { return .wrongData("tensor \(tensor.fqn) differs from the saved state (seed \(seed))") }
    }
    for (fqn, value) in values where report.values[fqn] != value {
        return .wrongData("value \(fqn) is \(String(describing: report.values[fqn])), saved \(value)")
    }
    return .matches
}

/// Saves the recipe's state from `ranks` in-process ranks.
func saveRecipe(
    _ directory: String, seed: UInt64, rows: Int, ranks: Int, engine: IOEngine,
    options: CheckpointOptions = CheckpointOptions(directPayloadThreshold: 64 << 10)
) async throws {
    let states = (0..<ranks).map { CrashRecipe.state(seed: seed, rows: rows, rank: $0, ranks: ranks) }
    _ = try await withTimeout(120, "save of \(ranks) ranks to \(directory)") {
        try await onRanks(ranks) { comm in
            try await Checkpointer(engine: engine, communicator: comm, options: options).save(states[comm.rank], to: directory)
        }
    }
}

/// Whether an error is a `CheckpointError` with one of `codes`.
func isCheckpointError(_ error: any Error, _ codes: CheckpointError.Code...) -> Bool {
    guard let error = error as? CheckpointError else { return false }
    return codes.contains(error.code)
}

/// The path of a built executable of this package (next to the test bundle), or nil.
func builtExecutable(_ name: String) -> String? {
    if let override = ProcessInfo.processInfo.environment["CKPT_CRASH_CHILD"], name == "ckpt-crash-child" {
        return override
    }
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory.deleteLastPathComponent()
    }
    return nil
}

/// A child process with its stdout read line by line (non-blocking), killed with SIGKILL.
final class ChildProcess: @unchecked Sendable {
    // Safety: used from one thread at a time (the test's blocking helper thread).
    let pid: pid_t
    private let stdoutFD: Int32
    private var pending: [UInt8] = []
    private(set) var lines: [String] = []
    private(set) var exited: Int32?

    init(_ executable: String, _ arguments: [String]) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.EMFILE) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        // stderr to /dev/null, and no crash backtraces (they take seconds and flood the log):
        // the tests judge children by their stdout and exit status.
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, nil, argv, envp)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .ENOENT)
        }
        pid = child
        stdoutFD = fds[0]
        _ = fcntl(stdoutFD, F_SETFL, fcntl(stdoutFD, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        if exited == nil { kill(pid, SIGKILL); _ = waitOnce(block: true) }
        close(stdoutFD)
    }

    /// Reads what is available; returns the new complete lines.
    @discardableResult
    func poll() -> [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var new: [String] = []
        while true {
            let n = read(stdoutFD, &buffer, buffer.count)
            guard n > 0 else { break }
            pending += buffer[0..<n]
        }
        while let nl = pending.firstIndex(of: 10) {
            new.append(String(decoding: pending[..<nl], as: UTF8.self))
            pending.removeSubrange(...nl)
        }
        lines += new
        return new
    }

    private func waitOnce(block: Bool) -> Int32? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, block ? 0 : WNOHANG)
        guard r == pid else { return nil }
        exited = status
        return status
    }

    /// Whether the child has exited (reaps it).
    var hasExited: Bool { exited != nil || waitOnce(block: false) != nil }

    /// Waits (polling stdout) until a line satisfies `predicate`, the child exits, or `timeout`.
    func waitForLine(timeout: Double, _ predicate: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = poll().first(where: predicate) { return line }
            if hasExited { return poll().first(where: predicate) }
            usleep(200)
        }
        return nil
    }

    func killNow() {
        if exited == nil {
            kill(pid, SIGKILL)
            _ = waitOnce(block: true)
        }
        poll()
    }

    /// Waits for exit (up to `timeout`), killing after it; returns whether it exited by itself.
    func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            poll()
            if hasExited { poll(); return true }
            usleep(1000)
        }
        killNow()
        return false
    }
}
