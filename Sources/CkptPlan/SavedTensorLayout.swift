/// What a checkpoint's metadata says about one saved tensor (`TensorStorageMetadata`).
public struct SavedTensorLayout: Hashable, Sendable {
    /// Global shape.
    public var globalShape: [Int]
    /// Bytes per element (of the saved dtype).
    public var elementSize: Int
    /// Opaque dtype tag.
    public var dtype: String
    /// Saved chunks, in metadata order; indices into this array name chunks everywhere.
    public var chunks: [ChunkBox]

    /// Creates a layout.
    public init(globalShape: [Int], elementSize: Int, dtype: String, chunks: [ChunkBox]) {
        self.globalShape = globalShape
        self.elementSize = elementSize
        self.dtype = dtype
        self.chunks = chunks
    }
}
