/// Phase two result: every read a rank issues, grouped per file, with accounting.
public struct ReadPlan: Hashable, Sendable {
    /// Per file (ascending file id), its reads.
    public var files: [FileReadPlan]
    /// Bytes the rank needs: requested tensor blocks plus whole BYTE_IO records.
    public var neededBytes: Int
    /// Bytes the reads fetch (needed bytes, minus bytes several destinations share, plus gaps).
    public var readBytes: Int
    /// Number of copy runs the reads serve.
    public var runCount: Int

    /// Total number of reads.
    public var readCount: Int { files.reduce(0) { $0 + $1.reads.count } }
}
