extension DCPMetadata {
    /// Largest byte count (of a tensor, a chunk or a record) and offset the metadata may state:
    /// 2^60 bytes, far beyond any file, and small enough that sums and offsets computed from
    /// such values do not overflow.
    public static let maxByteCount = 1 << 60

    /// The first value of the metadata that arithmetic on it could not survive, or nil: a
    /// negative dimension, offset or length; a tensor, chunk or record larger than
    /// ``maxByteCount``, or all tensors or all records together; a chunk whose rank differs from
    /// its tensor's or whose end overflows.
    /// `.metadata` is untrusted input: tools check this before computing sizes and offsets from
    /// it (whether chunks tile their tensors is checked where they are used).
    public func boundsProblem() -> String? {
        func bytes(_ dims: [Int], _ itemSize: Int) -> Int? {
            var total = itemSize
            for d in dims {
                guard d >= 0 else { return nil }
                let (product, overflow) = total.multipliedReportingOverflow(by: d)
                guard !overflow, product <= Self.maxByteCount else { return nil }
                total = product
            }
            return total
        }
        var tensorTotal = 0
        for (fqn, entry) in stateDictMetadata.entries {
            guard case .tensor(let tensor) = entry else { continue }
            let itemSize = tensor.properties.dtype.itemSize
            guard let size = bytes(tensor.size, itemSize) else {
                return "tensor '\(fqn)' has shape \(tensor.size): a negative dimension, or more than 2^60 bytes"
            }
            tensorTotal += size
            guard tensorTotal <= Self.maxByteCount else {
                return "the tensors up to '\(fqn)' hold more than 2^60 bytes together"
            }
            for chunk in tensor.chunks {
                guard chunk.offsets.count == tensor.size.count, chunk.sizes.count == tensor.size.count else {
                    return "tensor '\(fqn)' (\(tensor.size.count) dims) has a chunk with offsets \(chunk.offsets) and sizes \(chunk.sizes)"
                }
                let endsOverflow = zip(chunk.offsets, chunk.sizes).contains { $0 < 0 || $0.addingReportingOverflow($1).overflow }
                guard !endsOverflow, bytes(chunk.sizes, itemSize) != nil else {
                    return "tensor '\(fqn)' has a chunk at \(chunk.offsets) of sizes \(chunk.sizes): negative, overflowing or more than 2^60 bytes"
                }
            }
        }
        var recordTotal = 0
        for (index, info) in storageData.entries {
            let place = index.offset.map { " chunk \($0)" } ?? ""
            guard info.offset >= 0, info.length >= 0, info.offset <= Self.maxByteCount, info.length <= Self.maxByteCount else {
                return "the record of '\(index.fqn)'\(place) in '\(info.relativePath)' is at offset \(info.offset) with length \(info.length)"
            }
            recordTotal += info.length
            guard recordTotal <= Self.maxByteCount else {
                return "the records up to that of '\(index.fqn)'\(place) hold more than 2^60 bytes together"
            }
        }
        return nil
    }
}
