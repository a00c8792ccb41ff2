/// The settings of an `IOEngine`.
public struct IOEngineConfiguration: Sendable, Hashable {
    /// How the backend is chosen.
    public enum BackendChoice: String, Sendable, Hashable {
        /// io_uring when the ring can be set up, POSIX otherwise. The environment variable
        /// `CKPT_IO_BACKEND=posix|uring|auto` refines this choice.
        case automatic
        /// io_uring, or fail with `IOError.Code.backendUnavailable`.
        case ioUring
        /// The POSIX thread-pool backend.
        case posix
    }

    /// The backend choice. Explicit `.ioUring`/`.posix` wins over `CKPT_IO_BACKEND`.
    public var backend: BackendChoice
    /// Maximum operations in flight per engine (io_uring submission queue depth). Deep by
    /// default: a resharded load issues many small reads, and a device keeps its bandwidth on
    /// small requests only with many of them queued (memory in flight is bounded by the pool and
    /// by callers, not by this).
    public var queueDepth: Int
    /// Size of each pool buffer and of each block of large transfers; a multiple of 4096.
    public var bufferSize: Int
    /// Number of pool buffers: the pool holds at most `bufferSize * bufferCount` bytes.
    public var bufferCount: Int
    /// Register the pool's buffers with io_uring (fixed-buffer reads and writes).
    public var registerBuffers: Bool
    /// Allocate pool buffers on the NUMA node of the calling thread (multi-node machines only).
    public var numaLocal: Bool
    /// Threads of the POSIX backend.
    public var posixThreadCount: Int

    public init(
        backend: BackendChoice = .automatic, queueDepth: Int = 64, bufferSize: Int = 4 << 20,
        bufferCount: Int = 16, registerBuffers: Bool = true, numaLocal: Bool = true,
        posixThreadCount: Int = 4
    ) {
        self.backend = backend
        self.queueDepth = queueDepth
        self.bufferSize = bufferSize
        self.bufferCount = bufferCount
        self.registerBuffers = registerBuffers
        self.numaLocal = numaLocal
        self.posixThreadCount = posixThreadCount
    }
}
