/// Names one input item: the rank that supplied it and its position in that rank's item list.
public struct SaveItemReference: Hashable, Sendable, CustomStringConvertible {
    /// Rank (index of the plan in the planner's input).
    public var rank: Int
    /// Index in that rank's input item list.
    public var item: Int

    /// Creates a reference.
    public init(rank: Int, item: Int) {
        self.rank = rank
        self.item = item
    }

    public var description: String { "rank \(rank) item \(item)" }
}
