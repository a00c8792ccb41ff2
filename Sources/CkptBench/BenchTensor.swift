/// One tensor of the benchmark training state: its fully qualified name, element type and global
/// (unsharded) shape.
public struct BenchTensor: Sendable, Hashable, Codable {
    /// Fully qualified name in the flattened state dict, e.g. `model.layers.0.attn.qkv.weight`.
    public var fqn: String
    /// Element type.
    public var dtype: BenchDType
    /// Global shape, outermost dimension first (row-major).
    public var shape: [Int]

    /// Creates a tensor description.
    public init(fqn: String, dtype: BenchDType, shape: [Int]) {
        self.fqn = fqn
        self.dtype = dtype
        self.shape = shape
    }

    /// Number of elements (1 for a 0-dimensional tensor).
    public var elementCount: Int { shape.reduce(1, *) }

    /// Number of bytes of the whole tensor.
    public var byteCount: Int { elementCount * dtype.elementSize }
}
