/// Finds a region of a box not covered by a set of boxes (error path only): pop a region, find a
/// covering box that touches it, and cut the region around that box (guillotine cuts); a region
/// no box touches is a hole.
enum HoleFinder {
    static func firstHole(in region: ChunkBox, coveredBy boxes: [ChunkBox]) -> ChunkBox? {
        let count = region.sizes.count
        if count == 0 { return boxes.isEmpty ? region : nil }
        var stack = [region]
        while let current = stack.popLast() {
            if current.sizes.contains(0) { continue }
            guard let cover = boxes.first(where: { BoxMath.overlaps($0, current) }) else { return current }
            var rest = current
            for dim in 0..<count {
                let restStart = rest.offsets[dim]
                let restEnd = restStart + rest.sizes[dim]
                let coverStart = max(cover.offsets[dim], restStart)
                let coverEnd = min(cover.offsets[dim] + cover.sizes[dim], restEnd)
                if coverStart > restStart {
                    var piece = rest
                    piece.sizes[dim] = coverStart - restStart
                    stack.append(piece)
                }
                if coverEnd < restEnd {
                    var piece = rest
                    piece.offsets[dim] = coverEnd
                    piece.sizes[dim] = restEnd - coverEnd
                    stack.append(piece)
                }
                rest.offsets[dim] = coverStart
                rest.sizes[dim] = coverEnd - coverStart
            }
        }
        return nil
    }
}
