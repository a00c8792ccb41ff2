/// Whether a scenario writes or reads a checkpoint; decides which raw-device figure it is compared with.
public enum ScenarioDirection: String, Sendable, Hashable, Codable {
    /// Writes (compared with the raw device's write bandwidth).
    case save
    /// Reads (compared with the raw device's read bandwidth).
    case load
}
