/// The coordinator's result: what every rank writes, where, and the metadata model.
public struct GlobalSavePlan: Hashable, Sendable {
    /// Per rank: indices of the input items the rank keeps after dedup, in the rank's order.
    public var keptItems: [[Int]]
    /// Ordered `state_dict_metadata`: first appearance in the de-duplicated plans (rank 0's kept
    /// items, then new fqns of rank 1, ...).
    public var metadata: [SaveMetadataEntry]
    /// Per rank: its data files, in file-number order.
    public var files: [[PlannedFile]]
    /// Per rank: the dedup counter at the end (the storage DCP's dedup charged to the rank, or real
    /// chunk bytes under ``SavePlanOptions/DedupPolicy/balancedByBytes``).
    public var assignedWeights: [Int]
    /// Per rank: payload bytes of the tensor chunks the rank writes.
    public var tensorBytesPerRank: [Int]
}
