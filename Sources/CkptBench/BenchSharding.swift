/// The splitting rule shared by every layout: `torch.chunk` semantics.
public enum BenchSharding {
    /// Splits `0..<length` into exactly `parts` contiguous ranges the way `torch.chunk` does:
    /// every range has `ceil(length / parts)` elements except the last non-empty one, and trailing
    /// ranges are empty when there are not enough elements (e.g. length 5 over 4 parts gives
    /// 2, 2, 1, 0). Returns an empty array when `parts < 1` or `length < 0`.
    public static func chunkRanges(length: Int, parts: Int) -> [Range<Int>] {
        guard parts >= 1, length >= 0 else { return [] }
        let step = (length + parts - 1) / parts
        return (0..<parts).map { index in
            let lower = min(length, index * step)
            let upper = min(length, lower + step)
            return lower..<upper
        }
    }

    /// Splits `tensor` along `dimension` into `parts` chunks (empty trailing chunks included), so
    /// element `i` of the result belongs to rank `i`. A 0-dimensional tensor (or an out-of-range
    /// `dimension`) is not split: the result is the single whole tensor, for rank 0.
    public static func split(_ tensor: BenchTensor, dimension: Int, parts: Int) -> [BenchChunk] {
        let shape = tensor.shape
        guard shape.indices.contains(dimension) else {
            guard parts >= 1 else { return [] }
            return [
                BenchChunk(
                    fqn: tensor.fqn, dtype: tensor.dtype, globalShape: shape,
                    offsets: shape.map { _ in 0 }, sizes: shape)
            ]
        }
        return chunkRanges(length: shape[dimension], parts: parts).map { range in
            var offsets = shape.map { _ in 0 }
            var sizes = shape
            offsets[dimension] = range.lowerBound
            sizes[dimension] = range.count
            return BenchChunk(
                fqn: tensor.fqn, dtype: tensor.dtype, globalShape: shape, offsets: offsets, sizes: sizes)
        }
    }
}
