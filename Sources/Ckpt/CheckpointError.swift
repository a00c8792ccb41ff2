/// Errors of the checkpoint engine. Each names what went wrong, where (file, tensor, chunk, offset
/// when known), and what was expected, and keeps the underlying error when there is one.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// A collective's payload broke the engine's own protocol.
        case protocolViolation
        /// Another rank failed; the collective was aborted.
        case aborted
        /// The checkpoint has no committed `.metadata`.
        case incompleteCheckpoint
        /// Requested names, shapes or dtypes do not match what was saved.
        case mismatch
        /// A file's contents do not match the metadata or the checksums.
        case corrupt
        /// The I/O engine failed.
        case io
        /// Invalid arguments from the caller.
        case invalidArgument
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error)?
    public var location: String

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil,
                file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.location = "\(file):\(line)"
    }

    static func protocolViolation(_ message: String, file: String = #fileID, line: Int = #line) -> CheckpointError {
        CheckpointError(.protocolViolation, message, file: file, line: line)
    }

    public var description: String {
        var text = "\(code.rawValue): \(message)"
        if let underlying { text += "\n  caused by: \(underlying)" }
        return text
    }
}
