/// Row-major (odometer) stepping of a multi-index, as the chunk walkers use it.
public enum RowMajorIndex {
    /// Advances `index` to the next multi-index in row-major order with `index[d] < limits[d]`
    /// (`limits` has at least `index.count` entries). Returns false, with `index` back to all
    /// zeros, after the last one (at once for an empty index).
    @inlinable
    public static func advance(_ index: inout [Int], limits: [Int]) -> Bool {
        var d = index.count - 1
        while d >= 0 {
            index[d] += 1
            if index[d] < limits[d] { return true }
            index[d] = 0
            d -= 1
        }
        return false
    }
}
