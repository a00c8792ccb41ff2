/// One point of the rank sweep: save and load throughput at a rank count.
public struct RankSweepPoint: Sendable, Hashable, Codable {
    /// Rank count.
    public var ranks: Int
    /// Sharded save at this rank count.
    public var save: ScenarioResult?
    /// Load of that checkpoint by the same number of ranks.
    public var load: ScenarioResult?

    /// Creates a point.
    public init(ranks: Int, save: ScenarioResult?, load: ScenarioResult?) {
        self.ranks = ranks
        self.save = save
        self.load = load
    }
}
