/// A byte range of an output file and where its bytes come from, for ``StreamCopyPlanner``.
public struct StreamCopyRun: Hashable, Sendable {
    /// Where a run's bytes come from.
    public enum Source: Hashable, Sendable {
        /// A data file (an opaque id of the caller) at a byte offset.
        case file(Int, offset: Int)
        /// A byte array the caller holds (an opaque id) at a byte offset.
        case literal(Int, offset: Int)
    }

    /// Byte offset in the output.
    public var outputOffset: Int
    /// Length in bytes.
    public var length: Int
    public var source: Source

    /// Creates a run.
    public init(outputOffset: Int, length: Int, source: Source) {
        self.outputOffset = outputOffset
        self.length = length
        self.source = source
    }
}
