/// What the engine needs from a backend.
protocol IOBackend: Sendable {
    var kind: IOBackendKind { get }
    /// Runs `ops` concurrently and returns one result per op: bytes transferred (0 for flushes)
    /// or -errno. Returns only once no op's memory is used by the kernel or a worker anymore.
    /// Task cancellation makes ops not yet done end with -ECANCELED; after shutdown every op
    /// ends with -ESHUTDOWN.
    func run(_ ops: [RawOp]) async -> [Int]
    /// Number of submission system calls so far (io_uring_enter for io_uring).
    var submitCalls: Int { get }
    /// Stops accepting work, waits for operations in flight, releases threads and the ring.
    func shutdown() async
}
