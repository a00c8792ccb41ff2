extension ChunkBox {
    /// Calls `body(tensorByteOffset, blockByteOffset, length)` for each maximal run of the block
    /// that is contiguous in the C-ordered (row-major) tensor of `shape`, in block order; trailing
    /// dimensions the block covers completely merge into one run. Stops early when `body` returns
    /// false. The box must lie inside `shape` (checked by the caller); an empty box has no run, a
    /// 0-d box one run of one element.
    public func forEachContiguousRun(
        inTensorOfShape shape: [Int], elementSize: Int, _ body: (_ tensor: Int, _ block: Int, _ length: Int) -> Bool
    ) {
        let rank = shape.count
        guard rank > 0 else {
            _ = body(0, 0, elementSize)
            return
        }
        guard !sizes.contains(0) else { return }
        var strides = [Int](repeating: elementSize, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        // Dimensions after `split` are covered completely, so each run spans from `split` inward.
        var split = rank - 1
        while split > 0, offsets[split] == 0, sizes[split] == shape[split] { split -= 1 }
        let runLength = sizes[split] * strides[split]
        var index = [Int](repeating: 0, count: split)
        var block = 0
        while true {
            var tensor = offsets[split] * strides[split]
            for d in 0..<split { tensor += (offsets[d] + index[d]) * strides[d] }
            guard body(tensor, block, runLength) else { return }
            block += runLength
            guard RowMajorIndex.advance(&index, limits: sizes) else { return }
        }
    }
}
