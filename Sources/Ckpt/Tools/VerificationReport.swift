/// One problem found by ``CheckpointVerifier``.
public struct VerificationProblem: Sendable, Codable, CustomStringConvertible, Equatable {
    /// The file concerned (relative to the checkpoint), if any.
    public var file: String?
    /// Byte offset in `file`, if known.
    public var offset: Int?
    public var message: String

    public init(file: String?, offset: Int?, message: String) {
        self.file = file
        self.offset = offset
        self.message = message
    }

    public var description: String {
        switch (file, offset) {
        case (let f?, let o?): return "\(f) @ \(o): \(message)"
        case (let f?, nil): return "\(f): \(message)"
        default: return message
        }
    }
}

/// What ``CheckpointVerifier`` checked and found.
public struct VerificationReport: Sendable, Codable {
    public var directory: String
    /// Problems in the order found, at most the verifier's bound.
    public var problems: [VerificationProblem]
    /// Problems found beyond the bound (not listed).
    public var omittedProblems: Int
    /// Tensor records parsed.
    public var tensorRecords: Int
    /// BYTE_IO records decoded.
    public var valueRecords: Int
    /// Payload bytes read and hashed.
    public var bytesHashed: Int
    /// Whether content checks ran (a sidecar of this save was present).
    public var hasChecksums: Bool
    /// Records whose XXH3 matched the sidecar.
    public var checksumsVerified: Int

    /// True when no problem was found.
    public var isValid: Bool { problems.isEmpty && omittedProblems == 0 }
}
