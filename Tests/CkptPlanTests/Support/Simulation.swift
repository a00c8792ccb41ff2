import CkptTestSupport
import Testing

@testable import CkptPlan

/// In-memory checkpoint simulation for the resharding property tests.
enum Simulation {
    /// Row-major element index of `box`'s elements within `shape`, in the box's own row-major order.
    static func forEachElement(of box: ChunkBox, in shape: [Int], _ body: (_ local: Int, _ global: Int) -> Void) {
        let count = shape.count
        if count == 0 {
            body(0, 0)
            return
        }
        if box.sizes.contains(0) { return }
        var strides = [Int](repeating: 1, count: count)
        for dim in stride(from: count - 2, through: 0, by: -1) { strides[dim] = strides[dim + 1] * shape[dim + 1] }
        var index = [Int](repeating: 0, count: count)
        var local = 0
        while true {
            var global = 0
            for dim in 0..<count { global += (box.offsets[dim] + index[dim]) * strides[dim] }
            body(local, global)
            local += 1
            var dim = count - 1
            while dim >= 0 {
                index[dim] += 1
                if index[dim] < box.sizes[dim] { break }
                index[dim] = 0
                dim -= 1
            }
            if dim < 0 { return }
        }
    }

    /// The C-contiguous bytes of `box` cut out of a global tensor.
    static func extract(_ box: ChunkBox, from global: [UInt8], shape: [Int], elementSize: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (box.volume ?? 0) * elementSize)
        out.withUnsafeMutableBytes { dst in
            global.withUnsafeBytes { src in
                forEachElement(of: box, in: shape) { local, globalIndex in
                    (dst.baseAddress! + local * elementSize).copyMemory(
                        from: src.baseAddress! + globalIndex * elementSize, byteCount: elementSize)
                }
            }
        }
        return out
    }

    enum GridStyle: CaseIterable { case rows, columns, mesh2D, anyDims, single }

    /// Cut points of `extent` into `parts` pieces, some possibly empty.
    static func cuts(_ extent: Int, parts: Int, rng: inout SplitMix64) -> [Int] {
        var points = (0..<(parts - 1)).map { _ in rng.int(0...extent) }
        points.sort()
        return [0] + points + [extent]
    }

    /// A random grid partition of a tensor (possibly with empty cells).
    static func partition(_ shape: [Int], style: GridStyle, rng: inout SplitMix64) -> [ChunkBox] {
        if shape.isEmpty { return [ChunkBox(offsets: [], sizes: [])] }
        var perDim: [[Int]] = []
        for dim in shape.indices {
            let split: Bool
            switch style {
            case .rows: split = dim == 0
            case .columns: split = dim == min(1, shape.count - 1)
            case .mesh2D: split = dim < 2
            case .anyDims: split = rng.chance(0.5)
            case .single: split = false
            }
            perDim.append(cuts(shape[dim], parts: split ? rng.int(1...4) : 1, rng: &rng))
        }
        var boxes: [ChunkBox] = [ChunkBox(offsets: [], sizes: [])]
        for dim in shape.indices {
            var next: [ChunkBox] = []
            for partial in boxes {
                for piece in 0..<(perDim[dim].count - 1) {
                    var grown = partial
                    grown.offsets.append(perDim[dim][piece])
                    grown.sizes.append(perDim[dim][piece + 1] - perDim[dim][piece])
                    next.append(grown)
                }
            }
            boxes = next
        }
        return boxes
    }

    /// torch's DTensor `Shard(dim)` chunks on `count` ranks: ceil-division, empty shards at offset n.
    static func torchShards(_ shape: [Int], dim: Int, count: Int) -> [ChunkBox] {
        let extent = shape[dim]
        let chunk = (extent + count - 1) / count
        return (0..<count).map { rank in
            var box = ChunkBox(wholeTensorOfShape: shape)
            let start = min(rank * chunk, extent)
            let size = max(0, min(extent, (rank + 1) * chunk) - start)
            box.offsets[dim] = size == 0 ? extent : start
            box.sizes[dim] = size
            return box
        }
    }

    static func randomShape(rng: inout SplitMix64) -> [Int] {
        let dims = rng.int(0...4)
        let maxExtent = [1, 40, 12, 6, 4][dims]
        return (0..<dims).map { _ in rng.chance(0.06) ? 0 : rng.int(1...maxExtent) }
    }
}
