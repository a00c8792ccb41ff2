/// A named part of a scenario's time, e.g. `gather` and `write` for the single-file baseline.
public struct ScenarioPhase: Sendable, Hashable, Codable {
    /// Phase name.
    public var name: String
    /// Per-repeat seconds spent in the phase.
    public var time: RepeatStatistics

    /// Creates a phase from its per-repeat seconds.
    public init(name: String, seconds: [Double]) {
        self.name = name
        self.time = RepeatStatistics(seconds)
    }
}
