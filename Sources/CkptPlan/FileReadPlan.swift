/// The reads of one file, sorted by offset.
public struct FileReadPlan: Hashable, Sendable {
    /// Opaque file id.
    public var file: Int
    /// Reads sorted by offset (then length).
    public var reads: [PlannedRead]
}
