/// Where a saved chunk's raw payload lies: a byte range of a data file, laid out C-contiguous
/// (row-major) over the chunk's sizes.
public struct PayloadLocation: Hashable, Sendable {
    /// Opaque file id of the caller.
    public var file: Int
    /// Byte offset of the payload in the file.
    public var offset: Int
    /// Payload length in bytes (must be the chunk's element count times the element size).
    public var length: Int

    /// Creates a location.
    public init(file: Int, offset: Int, length: Int) {
        self.file = file
        self.offset = offset
        self.length = length
    }
}
