/// A maximal byte range that is contiguous both in a saved payload and in a destination.
public struct CopyRun: Hashable, Sendable {
    /// Opaque file id.
    public var file: Int
    /// Byte offset in the file.
    public var sourceOffset: Int
    /// Opaque destination buffer id.
    public var destination: Int
    /// Byte offset in the destination buffer.
    public var destinationOffset: Int
    /// Length in bytes (> 0).
    public var length: Int

    /// Creates a run.
    public init(file: Int, sourceOffset: Int, destination: Int, destinationOffset: Int, length: Int) {
        self.file = file
        self.sourceOffset = sourceOffset
        self.destination = destination
        self.destinationOffset = destinationOffset
        self.length = length
    }
}
