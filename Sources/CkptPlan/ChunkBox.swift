/// A rectangular block of a tensor: start index and extent per dimension.
///
/// The same shape as DCP's `ChunkStorageMetadata` (`offsets`, `sizes`). A 0-d tensor's only chunk
/// has empty `offsets` and `sizes` and holds one element.
public struct ChunkBox: Hashable, Sendable, CustomStringConvertible {
    /// Global start index of the block, per dimension.
    public var offsets: [Int]
    /// Extent of the block, per dimension.
    public var sizes: [Int]

    /// Creates a box from its per-dimension start indices and extents.
    public init(offsets: [Int], sizes: [Int]) {
        self.offsets = offsets
        self.sizes = sizes
    }

    /// A box covering a whole tensor of the given shape (offsets all 0).
    public init(wholeTensorOfShape shape: [Int]) {
        self.offsets = Array(repeating: 0, count: shape.count)
        self.sizes = shape
    }

    /// Number of dimensions.
    public var dimensionCount: Int { sizes.count }

    /// Number of elements (1 for a 0-d box), or `nil` if a size is negative or the product overflows.
    public var volume: Int? { BoxMath.volume(sizes) }

    public var description: String { "offsets \(offsets) sizes \(sizes)" }
}
