/// Knobs of read coalescing in ``LoadPlanner/planReads(tensors:bytes:options:)``.
public struct ReadPlanOptions: Hashable, Sendable {
    /// Gap bytes the plan may read in total to merge nearby runs of the same payload into one
    /// read, as a fraction of the needed bytes (default 0.01 = 1 %). Smallest gaps are bridged
    /// first. 0 disables gap merging (adjacent runs still merge).
    public var gapBudgetFraction: Double
    /// Largest read in bytes (default 64 MiB); longer ranges are split.
    public var maxReadSize: Int

    /// Creates options.
    public init(gapBudgetFraction: Double = 0.01, maxReadSize: Int = 64 << 20) {
        self.gapBudgetFraction = gapBudgetFraction
        self.maxReadSize = maxReadSize
    }
}
