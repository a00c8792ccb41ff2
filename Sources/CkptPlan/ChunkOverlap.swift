/// The intersection of one saved chunk with one local chunk (DCP's `ReadItem` for a tensor).
public struct ChunkOverlap: Hashable, Sendable {
    /// Index of the saved chunk in ``SavedTensorLayout/chunks``.
    public let savedChunk: Int
    /// Index of the local chunk in ``TensorLoadRequest/localChunks``.
    public let localChunk: Int
    /// Start of the intersection inside the saved chunk, per dimension.
    public let storageOffsets: [Int]
    /// Start of the intersection inside the local chunk, per dimension.
    public let destinationOffsets: [Int]
    /// Extent of the intersection, per dimension.
    public let lengths: [Int]
    /// Bytes in the intersection.
    public let byteCount: Int
}
