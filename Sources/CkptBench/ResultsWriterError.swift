/// Why results could not be written.
public struct ResultsWriterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file or directory involved.
    public var path: String
    /// What went wrong.
    public var message: String

    /// Creates an error.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "cannot write results to \(path): \(message)" }
}
