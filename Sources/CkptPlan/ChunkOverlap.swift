/// The intersection of one saved chunk with one local chunk (DCP's `ReadItem` for a tensor).
public struct ChunkOverlap: Hashable, Sendable {
    /// Index of the saved chunk in ``SavedTensorLayout/chunks``.
    public var savedChunk: Int
    /// Index of the local chunk in ``TensorLoadRequest/localChunks``.
    public var localChunk: Int
    /// Start of the intersection inside the saved chunk, per dimension.
    public var storageOffsets: [Int]
    /// Start of the intersection inside the local chunk, per dimension.
    public var destinationOffsets: [Int]
    /// Extent of the intersection, per dimension.
    public var lengths: [Int]
    /// Bytes in the intersection.
    public var byteCount: Int
}
