/// A sweep index over the chunks of one tensor, to find overlapping chunks without comparing every
/// pair: non-empty chunks sorted by their start on one dimension (the one with the most distinct
/// starts), plus the largest extent on that dimension, bound the candidates of a query to a
/// binary-searched window. Boxes must already be validated against the tensor shape.
struct OverlapIndex {
    let boxes: [ChunkBox]
    /// Sweep dimension, or `nil` for 0-d tensors (every chunk overlaps every chunk).
    let dimension: Int?
    /// Indices of non-empty boxes, sorted by start on `dimension`.
    let order: [Int]
    /// `boxes[order[i]].offsets[dimension]`.
    let starts: [Int]
    /// Largest extent on `dimension` among non-empty boxes.
    let maxExtent: Int

    init(boxes: [ChunkBox], shape: [Int]) {
        self.boxes = boxes
        guard !shape.isEmpty else {
            self.dimension = nil
            self.order = Array(boxes.indices)
            self.starts = []
            self.maxExtent = 0
            return
        }
        let nonEmpty = boxes.indices.filter { !boxes[$0].sizes.contains(0) }
        var bestDimension = 0
        var bestDistinct = -1
        for dim in shape.indices {
            let distinct = Set(nonEmpty.map { boxes[$0].offsets[dim] }).count
            if distinct > bestDistinct || (distinct == bestDistinct && shape[dim] > shape[bestDimension]) {
                bestDistinct = distinct
                bestDimension = dim
            }
        }
        let sorted = nonEmpty.sorted { lhs, rhs in
            let a = boxes[lhs].offsets[bestDimension]
            let b = boxes[rhs].offsets[bestDimension]
            return a != b ? a < b : lhs < rhs
        }
        self.dimension = bestDimension
        self.order = sorted
        self.starts = sorted.map { boxes[$0].offsets[bestDimension] }
        self.maxExtent = sorted.reduce(0) { max($0, boxes[$1].sizes[bestDimension]) }
    }

    /// First position in `starts` whose value is `>= value`.
    private func lowerBound(_ value: Int) -> Int {
        var low = 0
        var high = starts.count
        while low < high {
            let mid = (low + high) / 2
            if starts[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Indices of the boxes with a non-empty intersection with `query`, ascending. (Empty boxes
    /// are not indexed and an empty query matches nothing, although DCP's formula would call an
    /// empty box strictly inside another one overlapping: such pairs share no bytes.)
    func overlapping(_ query: ChunkBox) -> [Int] {
        guard let dim = dimension else { return order }
        if query.sizes.contains(0) { return [] }
        let queryStart = query.offsets[dim]
        let queryEnd = queryStart &+ query.sizes[dim]
        // start + maxExtent > queryStart  <=>  start >= queryStart - maxExtent + 1
        let low = lowerBound(queryStart &- maxExtent &+ 1)
        let high = lowerBound(queryEnd)
        var result: [Int] = []
        if low < high {
            for position in low..<high {
                let candidate = order[position]
                if BoxMath.overlaps(boxes[candidate], query) { result.append(candidate) }
            }
        }
        result.sort()
        return result
    }

    /// Some pair of overlapping boxes (lower index first), or `nil` if all are disjoint.
    func firstOverlappingPair() -> (Int, Int)? {
        guard let dim = dimension else {
            return order.count > 1 ? (order[0], order[1]) : nil
        }
        var best: (Int, Int)?
        for position in order.indices {
            let box = boxes[order[position]]
            let end = box.offsets[dim] &+ box.sizes[dim]
            var next = position + 1
            while next < order.count, starts[next] < end {
                if BoxMath.overlaps(box, boxes[order[next]]) {
                    let pair = (min(order[position], order[next]), max(order[position], order[next]))
                    if let current = best {
                        if pair < current { best = pair }
                    } else {
                        best = pair
                    }
                    break
                }
                next += 1
            }
        }
        return best
    }

    /// Like ``firstOverlappingPair()`` but with DCP's exact save-time rule (`_check_box_overlap`),
    /// under which a 0-size box strictly inside another box also "overlaps" it. Empty boxes are
    /// few (at most one per rank and tensor in DTensor layouts), so they are checked pairwise.
    func firstOverlappingPairIncludingEmpty() -> (Int, Int)? {
        var best = firstOverlappingPair()
        guard dimension != nil else { return best }
        let empty = boxes.indices.filter { boxes[$0].sizes.contains(0) }
        for e in empty {
            for other in boxes.indices where other != e {
                if boxes[other].sizes.contains(0), other < e { continue }  // pair already seen
                if BoxMath.overlaps(boxes[e], boxes[other]) {
                    let pair = (min(e, other), max(e, other))
                    if let current = best {
                        if pair < current { best = pair }
                    } else {
                        best = pair
                    }
                    break
                }
            }
        }
        return best
    }
}
