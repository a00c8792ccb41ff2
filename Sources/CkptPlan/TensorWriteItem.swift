/// A tensor chunk one rank wants to write: DCP's `WriteItem` of type TENSOR or SHARD.
public struct TensorWriteItem: Hashable, Sendable {
    /// Fully qualified name of the tensor.
    public var fqn: String
    /// Global shape of the whole tensor (`TensorWriteData.size`).
    public var globalShape: [Int]
    /// Bytes per element.
    public var elementSize: Int
    /// Opaque dtype tag (e.g. `"float32"`); compared for equality only.
    public var dtype: String
    /// The block of the global tensor this rank holds.
    public var chunk: ChunkBox

    /// Creates a tensor write item.
    public init(fqn: String, globalShape: [Int], elementSize: Int, dtype: String, chunk: ChunkBox) {
        self.fqn = fqn
        self.globalShape = globalShape
        self.elementSize = elementSize
        self.dtype = dtype
        self.chunk = chunk
    }

    /// A plain (non-distributed) tensor: one chunk covering the whole tensor at offset 0.
    public init(fqn: String, wholeTensorOfShape shape: [Int], elementSize: Int, dtype: String) {
        self.init(
            fqn: fqn, globalShape: shape, elementSize: elementSize, dtype: dtype,
            chunk: ChunkBox(wholeTensorOfShape: shape))
    }

    /// Payload bytes of the chunk, `nil` on overflow or negative sizes.
    public var chunkByteCount: Int? { BoxMath.byteCount(chunk.sizes, elementSize: elementSize) }

    /// Bytes of the whole global tensor (what DCP's `tensor_storage_size()` and bucketing use),
    /// `nil` on overflow or negative extents.
    public var globalByteCount: Int? { BoxMath.byteCount(globalShape, elementSize: elementSize) }
}
