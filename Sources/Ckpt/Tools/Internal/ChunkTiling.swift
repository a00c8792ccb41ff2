/// Checks that chunks tile a tensor exactly once.
enum ChunkTiling {
    /// Why `chunks` do not tile `shape` exactly once (every chunk in bounds, no two overlapping,
    /// their volumes summing to the tensor's), or nil when they do.
    static func problem(shape: [Int], chunks: [(offsets: [Int], sizes: [Int])]) -> String? {
        let total = shape.reduce(1, *)
        var covered = 0
        for (i, c) in chunks.enumerated() {
            guard c.offsets.count == shape.count, c.sizes.count == shape.count else {
                return "chunk \(i) at \(c.offsets) has \(c.offsets.count)/\(c.sizes.count) dims, the tensor \(shape.count)"
            }
            for d in shape.indices where c.offsets[d] < 0 || c.sizes[d] < 0 || c.offsets[d] + c.sizes[d] > shape[d] {
                return "chunk at \(c.offsets) of size \(c.sizes) exceeds the shape \(shape) in dim \(d)"
            }
            covered += c.sizes.reduce(1, *)
        }
        let nonEmpty = chunks.filter { !$0.sizes.contains(0) }
        if nonEmpty.count <= 4096 {
            for i in nonEmpty.indices {
                for j in nonEmpty.indices where j > i {
                    let a = nonEmpty[i], b = nonEmpty[j]
                    let overlaps = shape.indices.allSatisfy { d in
                        max(a.offsets[d], b.offsets[d]) < min(a.offsets[d] + a.sizes[d], b.offsets[d] + b.sizes[d])
                    }
                    if overlaps {
                        return "chunks at \(a.offsets) (size \(a.sizes)) and \(b.offsets) (size \(b.sizes)) overlap"
                    }
                }
            }
        }
        if covered != total {
            return covered < total
                ? "chunks cover \(covered) of \(total) elements (a part of the tensor is missing)"
                : "chunks hold \(covered) elements, the tensor has \(total) (overlap)"
        }
        return nil
    }
}
