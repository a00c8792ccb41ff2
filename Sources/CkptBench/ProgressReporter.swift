#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A single-line progress display on stderr: redrawn in place with `\r`, at most ~10 times a
/// second, and only when enabled and stderr is a terminal.
public final class ProgressReporter: Sendable {
    /// Whether anything is drawn.
    public let isActive: Bool
    private let minimumIntervalNanoseconds: UInt64
    private let output: @Sendable (String) -> Void
    private let now: @Sendable () -> UInt64
    private let state = Mutex(State())

    private struct State {
        var lastDraw: UInt64?
        var lastWidth = 0
    }

    /// Creates a reporter.
    ///
    /// - Parameters:
    ///   - enabled: false for `--no-progress`.
    ///   - isTerminal: whether the output is a terminal; default `isatty(2)`.
    ///   - minimumInterval: least time between redraws (default 100 ms).
    ///   - output: where text goes (default: stderr, unbuffered).
    ///   - now: monotonic clock in nanoseconds (injectable for tests).
    public init(
        enabled: Bool,
        isTerminal: Bool = isatty(2) != 0,
        minimumInterval: Duration = .milliseconds(100),
        output: @escaping @Sendable (String) -> Void = writeToStandardError,
        now: @escaping @Sendable () -> UInt64 = monotonicNanoseconds
    ) {
        self.isActive = enabled && isTerminal
        let (secondsPart, attoseconds) = minimumInterval.components
        self.minimumIntervalNanoseconds = UInt64(max(0, secondsPart)) * 1_000_000_000
            + UInt64(max(0, attoseconds / 1_000_000_000))
        self.output = output
        self.now = now
    }

    /// Shows `message` (and `fraction` as a percentage when given), unless the last redraw was
    /// less than the minimum interval ago. Returns whether it drew.
    @discardableResult
    public func update(_ message: String, fraction: Double? = nil) -> Bool {
        guard isActive else { return false }
        let time = now()
        let line: String? = state.withLock { state in
            if let last = state.lastDraw, time &- last < minimumIntervalNanoseconds { return nil }
            state.lastDraw = time
            var text = message
            if let fraction {
                let percent = Int((min(max(fraction, 0), 1) * 100).rounded(.down))
                text += " \(percent)%"
            }
            let padding = max(0, state.lastWidth - text.count)
            state.lastWidth = text.count
            return "\r" + text + String(repeating: " ", count: padding)
        }
        guard let line else { return false }
        output(line)
        return true
    }

    /// Clears the line (call before printing results).
    public func finish() {
        guard isActive else { return }
        let width: Int = state.withLock { state in
            defer {
                state.lastWidth = 0
                state.lastDraw = nil
            }
            return state.lastWidth
        }
        if width > 0 {
            output("\r" + String(repeating: " ", count: width) + "\r")
        }
    }

    /// Writes `text` to file descriptor 2.
    public static let writeToStandardError: @Sendable (String) -> Void = { text in
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { raw in
                write(2, raw.baseAddress.map { $0 + offset }, raw.count - offset)
            }
            if written <= 0 { break }
            offset += written
        }
    }

    /// `CLOCK_MONOTONIC` in nanoseconds.
    public static let monotonicNanoseconds: @Sendable () -> UInt64 = {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}
