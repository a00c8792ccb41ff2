/// Whether a scenario writes, reads or copies a checkpoint; decides which raw-device figure it is compared with.
public enum ScenarioDirection: String, Sendable, Hashable, Codable {
    /// Writes (compared with the raw device's write bandwidth).
    case save
    /// Reads (compared with the raw device's read bandwidth).
    case load
    /// Reads a checkpoint while writing another file, such as a consolidation (compared with the
    /// raw device's copy bandwidth: cold reads and writes at once).
    case copy

    /// The raw-device measurement it is compared with: `write`, `read` or `copy`.
    public var rawMeasurement: String {
        switch self {
        case .save: "write"
        case .load: "read"
        case .copy: "copy"
        }
    }
}
