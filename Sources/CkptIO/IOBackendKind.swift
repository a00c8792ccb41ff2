/// Which implementation performs the I/O.
public enum IOBackendKind: String, Sendable, Hashable, CustomStringConvertible {
    /// Linux io_uring through liburing: one ring per engine, a reaper thread for completions.
    case ioUring = "io_uring"
    /// pread/pwrite/fsync on a bounded pool of threads.
    case posix

    public var description: String { rawValue }
}
