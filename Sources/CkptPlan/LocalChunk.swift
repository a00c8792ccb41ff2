/// One block of a tensor the loading rank holds, and where its bytes live.
///
/// The destination is laid out C-contiguous (row-major) over `box.sizes`, starting `baseOffset`
/// bytes into the destination buffer named by `destination` (an opaque id of the caller).
public struct LocalChunk: Hashable, Sendable {
    /// The block of the global tensor.
    public var box: ChunkBox
    /// Opaque destination buffer id.
    public var destination: Int
    /// Byte offset of the block's first element in the destination buffer.
    public var baseOffset: Int

    /// Creates a local chunk.
    public init(box: ChunkBox, destination: Int, baseOffset: Int = 0) {
        self.box = box
        self.destination = destination
        self.baseOffset = baseOffset
    }
}
