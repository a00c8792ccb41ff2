import Foundation

/// Formatting of tool errors for a one-line message.
public enum ToolError {
    /// The error as one line: a ``CheckpointError``'s message followed by its causes (line breaks
    /// of nested descriptions joined with `; `).
    public static func oneLine(_ error: any Error) -> String {
        var text: String
        if let e = error as? CheckpointError {
            text = e.message
            if let underlying = e.underlying {
                let inner = oneLine(underlying)
                if !text.contains(inner) { text += ": " + inner }
            }
        } else {
            text = String(describing: error)
        }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; ")
    }
}
