/// A 4096-aligned buffer lent by an `IOBufferPool`; give it back with `IOBufferPool.release(_:)`.
///
/// `@unchecked Sendable`: it is a handle to pool memory; exactly one holder uses it between
/// `acquire` and `release`, which the pool's bookkeeping enforces.
public struct IOBuffer: @unchecked Sendable {
    /// Index in the pool (also the io_uring registered-buffer index when buffers are registered).
    public let index: Int
    /// The buffer's memory, `IOBufferPool.bufferSize` bytes.
    public let bytes: UnsafeMutableRawBufferPointer
}
