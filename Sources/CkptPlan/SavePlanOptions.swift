/// Knobs of ``SavePlanner``.
public struct SavePlanOptions: Hashable, Sendable {
    /// Which rank writes an item present on several ranks.
    public enum DedupPolicy: Hashable, Sendable {
        /// DCP's default (`dedup_save_plans`): the rank with the smallest planned storage so far,
        /// ties to the lowest rank. Items are visited in first-appearance order and every item
        /// (unique or not) adds DCP's `tensor_storage_size() or 1` to its rank: the *global* tensor
        /// bytes for tensors, 1 for BYTE_IO items and for globally empty tensors.
        case smallestPlan
        /// `dedup_save_to_lowest_rank=True`: the lowest rank holding the item always writes it.
        case lowestRank
        /// Not DCP's choice (any choice loads the same): unique items are charged their real
        /// chunk bytes first, then replicated items, largest chunk first, go to the rank with the
        /// fewest bytes so far (ties to the lowest rank). Balances the bytes each rank writes.
        case balancedByBytes
    }

    /// How a rank's items are split into data files.
    public enum FileLayout: Hashable, Sendable {
        /// `single_file_per_rank=True` with `thread_count = filesPerRank`: files `__{rank}_{i}.distcp`
        /// for `i < filesPerRank`, all created even when empty.
        case singleFilePerRank(filesPerRank: Int)
        /// `single_file_per_rank=False`: one file per item, in plan order.
        case filePerItem
    }

    /// Dedup policy; default ``DedupPolicy/smallestPlan`` (DCP's default).
    public var dedup: DedupPolicy
    /// File layout; default one file per rank (DCP's default).
    public var fileLayout: FileLayout

    /// Creates options; the defaults reproduce `dcp.save` with `FileSystemWriter` defaults.
    public init(dedup: DedupPolicy = .smallestPlan, fileLayout: FileLayout = .singleFilePerRank(filesPerRank: 1)) {
        self.dedup = dedup
        self.fileLayout = fileLayout
    }
}
