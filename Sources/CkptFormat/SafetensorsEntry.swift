/// One tensor of a safetensors file.
public struct SafetensorsEntry: Sendable, Equatable {
    /// Tensor name (for DCP blobs: the fqn).
    public var name: String
    /// Element type.
    public var dtype: DType
    /// Shape (empty for 0-d).
    public var shape: [Int]
    /// Byte range relative to the start of the data section.
    public var dataRange: Range<Int>

    /// Creates an entry.
    public init(name: String, dtype: DType, shape: [Int], dataRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataRange = dataRange
    }
}
