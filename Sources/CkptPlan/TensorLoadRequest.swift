/// One tensor a rank wants to load, with its local blocks.
public struct TensorLoadRequest: Hashable, Sendable {
    /// Fully qualified name.
    public var fqn: String
    /// Global shape the rank expects (must equal the saved one).
    public var globalShape: [Int]
    /// Bytes per element of the destination.
    public var elementSize: Int
    /// Opaque dtype tag of the destination (must equal the saved one).
    public var dtype: String
    /// The rank's blocks (a plain tensor: one block covering the whole tensor).
    public var localChunks: [LocalChunk]

    /// Creates a request.
    public init(fqn: String, globalShape: [Int], elementSize: Int, dtype: String, localChunks: [LocalChunk]) {
        self.fqn = fqn
        self.globalShape = globalShape
        self.elementSize = elementSize
        self.dtype = dtype
        self.localChunks = localChunks
    }
}
