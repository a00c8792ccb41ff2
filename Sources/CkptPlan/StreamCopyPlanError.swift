/// Errors of ``StreamCopyPlanner``: runs or sizes that do not describe an output.
public enum StreamCopyPlanError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A window or image size that is not a positive multiple of the alignment, or a bad alignment.
    case invalidSizes(String)
    /// A run outside the output, of negative length, or overlapping another run.
    case invalidRun(StreamCopyRun, reason: String)
    /// A run reading past the end of its data file, or from a file id that does not exist.
    case sourceOutOfBounds(StreamCopyRun, fileSize: Int?)

    public var description: String {
        switch self {
        case .invalidSizes(let reason):
            return "invalid stream copy sizes: \(reason)"
        case .invalidRun(let run, let reason):
            return "output bytes \(run.outputOffset)..<\(run.outputOffset &+ run.length) (\(run.source)): \(reason)"
        case .sourceOutOfBounds(let run, let size):
            guard let size else { return "output bytes at \(run.outputOffset): source \(run.source) names no known file" }
            return "output bytes at \(run.outputOffset): \(run.length) bytes from \(run.source) end past the file's \(size) bytes"
        }
    }
}
