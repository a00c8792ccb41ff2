/// One rectangular piece of a tensor held by one rank: the global tensor it belongs to and the
/// box it covers (`offsets` and `sizes` per dimension, in elements).
public struct BenchChunk: Sendable, Hashable, Codable {
    /// Fully qualified name of the tensor.
    public var fqn: String
    /// Element type.
    public var dtype: BenchDType
    /// Shape of the whole (global) tensor.
    public var globalShape: [Int]
    /// Start of the chunk in each dimension.
    public var offsets: [Int]
    /// Extent of the chunk in each dimension.
    public var sizes: [Int]

    /// Creates a chunk description.
    public init(fqn: String, dtype: BenchDType, globalShape: [Int], offsets: [Int], sizes: [Int]) {
        self.fqn = fqn
        self.dtype = dtype
        self.globalShape = globalShape
        self.offsets = offsets
        self.sizes = sizes
    }

    /// Number of elements in the chunk.
    public var elementCount: Int { sizes.reduce(1, *) }

    /// Number of bytes of the chunk (row-major, densely packed).
    public var byteCount: Int { elementCount * dtype.elementSize }

    /// Whether the chunk holds no element.
    public var isEmpty: Bool { elementCount == 0 }
}
