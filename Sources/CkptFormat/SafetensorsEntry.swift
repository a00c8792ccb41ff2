/// One tensor of a safetensors file.
public struct SafetensorsEntry: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range relative to the start of the data section.
    public var dataRange: Range<Int>

    public init(name: String, dtype: DType, shape: [Int], dataRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataRange = dataRange
    }
}
