/// One operation of a batch given to `IOEngine.perform(_:)`.
///
/// The memory a request points to must stay valid until `perform` returns; `perform` never
/// returns while the kernel still uses it.
public enum IORequest {
    /// Read `buffer.count` bytes at `offset` into `buffer`.
    case read(IOFile, offset: Int64, into: UnsafeMutableRawBufferPointer)
    /// Write `bytes` at `offset`.
    case write(IOFile, offset: Int64, from: UnsafeRawBufferPointer)
    /// Flush the file's data and metadata (runs after every read and write of the batch).
    case fsync(IOFile)
}
