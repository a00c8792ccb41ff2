/// One operation of a batch given to `IOEngine.perform(_:)`.
///
/// The memory a request points to must stay valid until `perform` returns; `perform` never
/// returns while the kernel still uses it.
public enum IORequest {
    /// Read `buffer.count` bytes at `offset` into `buffer`.
    case read(IOFile, offset: Int64, into: UnsafeMutableRawBufferPointer)
    /// Write `bytes` at `offset`.
    case write(IOFile, offset: Int64, from: UnsafeRawBufferPointer)
    /// Read consecutive bytes at `offset` into `buffers`, one after the other: a single vectored
    /// transfer (readv) when the file allows it (on an O_DIRECT file, every buffer's address and
    /// length and `offset` are multiples of 4096), so the device sees one large request instead
    /// of one per buffer; otherwise one read per buffer. Either way the bytes land the same.
    case readv(IOFile, offset: Int64, into: [UnsafeMutableRawBufferPointer])
    /// Write `buffers` one after the other at `offset`: the vectored counterpart of `readv`.
    case writev(IOFile, offset: Int64, from: [UnsafeRawBufferPointer])
    /// Flush the file's data and metadata (runs after every read and write of the batch).
    case fsync(IOFile)
}
