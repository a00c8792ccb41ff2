/// Why a chunk request to ``BenchContent`` is invalid. Every case names the tensor.
public enum BenchContentError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `globalShape`, `offsets` and `sizes` do not have the same number of dimensions.
    case dimensionMismatch(fqn: String, shape: Int, offsets: Int, sizes: Int)
    /// The box leaves the tensor, or has a negative offset, size or extent, in `dimension`.
    case outOfBounds(fqn: String, dimension: Int, offset: Int, size: Int, extent: Int)
    /// The element size is not positive.
    case invalidElementSize(fqn: String, elementSize: Int)
    /// The tensor's byte size does not fit in an `Int`.
    case sizeOverflow(fqn: String)
    /// The buffer is smaller than the chunk.
    case bufferTooSmall(fqn: String, needed: Int, actual: Int)

    public var description: String {
        switch self {
        case .dimensionMismatch(let fqn, let shape, let offsets, let sizes):
            return "\(fqn): shape has \(shape) dimensions but offsets \(offsets) and sizes \(sizes)"
        case .outOfBounds(let fqn, let dimension, let offset, let size, let extent):
            return "\(fqn): dimension \(dimension): chunk \(offset)..<\(offset + size) is outside 0..<\(extent)"
        case .invalidElementSize(let fqn, let elementSize):
            return "\(fqn): element size must be positive, got \(elementSize)"
        case .sizeOverflow(let fqn):
            return "\(fqn): byte size overflows"
        case .bufferTooSmall(let fqn, let needed, let actual):
            return "\(fqn): buffer holds \(actual) bytes, chunk needs \(needed)"
        }
    }
}
