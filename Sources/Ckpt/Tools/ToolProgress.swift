import Foundation
import Synchronization

/// Progress of a long tool operation (bytes done of a total), drawn as a bar on a terminal.
///
/// Thread-safe: updates may come from any task. Redraws at most ten times a second.
public final class ToolProgress: Sendable {
    private struct State {
        var lastDraw: UInt64 = 0
        var drawn = false
    }

    private let label: String
    private let output: Int32
    private let enabled: Bool
    private let state = Mutex(State())

    /// A bar labelled `label` on `fileDescriptor` (stderr by default), drawn only when `enabled`
    /// and the descriptor is a terminal.
    public init(label: String, enabled: Bool = true, fileDescriptor: Int32 = STDERR_FILENO) {
        self.label = label
        self.output = fileDescriptor
        self.enabled = enabled && isatty(fileDescriptor) == 1
    }

    /// Whether anything is drawn.
    public var isDrawing: Bool { enabled }

    /// Reports `done` of `total` bytes.
    public func update(done: Int, total: Int) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let text: String? = state.withLock { s in
            guard done >= total || now &- s.lastDraw >= 100_000_000 else { return nil }
            s.lastDraw = now
            s.drawn = true
            return Self.bar(label: label, done: done, total: total, width: 30)
        }
        if let text { write("\r" + text) }
    }

    /// Clears the bar's line.
    public func finish() {
        guard enabled else { return }
        let drawn = state.withLock { s in
            defer { s.drawn = false }
            return s.drawn
        }
        if drawn { write("\r\u{1B}[2K") }
    }

    /// The bar's text: `label [=====>    ]  42%  1.2 GiB / 2.9 GiB`.
    public static func bar(label: String, done: Int, total: Int, width: Int) -> String {
        let fraction = total > 0 ? min(1, max(0, Double(done) / Double(total))) : 1
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" + String(repeating: " ", count: width - filled - 1) : "")
        let percent = String(format: "%3d%%", Int(fraction * 100))
        return "\(label) [\(bar)] \(percent)  \(ByteCount.format(done)) / \(ByteCount.format(total))"
    }

    private func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Foundation.write(output, $0.baseAddress, $0.count) }
    }
}

/// Human-readable byte counts.
public enum ByteCount {
    /// `1536` -> `1.5 KiB`.
    public static func format(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}
