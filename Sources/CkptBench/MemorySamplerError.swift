/// Why a ``MemorySampler`` could not start.
public enum MemorySamplerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `start()` was called while sampling.
    case alreadyRunning
    /// `/proc/self/statm` could not be opened or parsed (errno given when known).
    case statmUnavailable(errno: Int32)
    /// The sampling thread could not be created.
    case threadCreationFailed(errno: Int32)

    public var description: String {
        switch self {
        case .alreadyRunning: return "memory sampler is already running"
        case .statmUnavailable(let e): return "cannot read /proc/self/statm (errno \(e))"
        case .threadCreationFailed(let e): return "cannot create the memory sampling thread (error \(e))"
        }
    }
}
