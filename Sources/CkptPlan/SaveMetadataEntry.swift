/// One entry of the checkpoint's `state_dict_metadata`, as the save planner builds it.
public struct SaveMetadataEntry: Hashable, Sendable {
    /// What was saved under an fqn.
    public enum Kind: Hashable, Sendable {
        /// `TensorStorageMetadata`.
        case tensor(Tensor)
        /// `BytesStorageMetadata`; `writer` is the item that will be written.
        case bytes(writer: SaveItemReference)
    }

    /// A tensor entry: global shape, properties and the chunks in plan order.
    public struct Tensor: Hashable, Sendable {
        /// Global shape (`size`).
        public var globalShape: [Int]
        /// Bytes per element.
        public var elementSize: Int
        /// Opaque dtype tag.
        public var dtype: String
        /// Chunks in plan order (rank 0's, then rank 1's, ...); `MetadataIndex.index` of a chunk is
        /// its position here.
        public var chunks: [Chunk]
    }

    /// A saved chunk and the item that writes it.
    public struct Chunk: Hashable, Sendable {
        /// The block.
        public var box: ChunkBox
        /// The item (after dedup) that writes it.
        public var writer: SaveItemReference
    }

    /// Fully qualified name.
    public var fqn: String
    /// Tensor or bytes.
    public var kind: Kind
}
