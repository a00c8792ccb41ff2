/// Where a slice of a read's buffer goes.
public struct ScatterEntry: Hashable, Sendable {
    /// Offset of the slice in the read buffer (0 = the read's first byte).
    public var bufferOffset: Int
    /// Opaque destination buffer id.
    public var destination: Int
    /// Byte offset in the destination buffer.
    public var destinationOffset: Int
    /// Slice length in bytes.
    public var length: Int

    /// Creates an entry.
    public init(bufferOffset: Int, destination: Int, destinationOffset: Int, length: Int) {
        self.bufferOffset = bufferOffset
        self.destination = destination
        self.destinationOffset = destinationOffset
        self.length = length
    }
}
