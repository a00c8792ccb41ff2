public import CkptPlan

/// Settings of a ``Checkpointer``.
public struct CheckpointOptions: Sendable {
    /// Data files per rank (`__{rank}_{i}.distcp`, DCP's `thread_count`); more files let one rank
    /// keep several streams in flight.
    public var filesPerRank: Int
    /// Which rank writes a tensor that several ranks hold (replicated tensors).
    public var dedup: SavePlanOptions.DedupPolicy
    /// O_DIRECT transfers (no page cache); buffered transfers + fsync otherwise.
    public var direct: Bool
    /// Compute the zip CRC-32 of every tensor payload, as torch.save does (`compute_crc32`). Tools
    /// such as Python's `zipfile` check it; `torch.load` does not.
    public var zipCRC32: Bool
    /// Record an XXH3-64 checksum of every record in the `.ckpt-checksums` sidecar at save.
    public var writeChecksums: Bool
    /// Check the sidecar checksums of every chunk a load reads (reads whole saved chunks).
    public var verifyChecksums: Bool
    /// Payloads of at least this many bytes are written straight from tensor memory at a
    /// 4096-aligned file offset; smaller records are packed through staging buffers.
    public var directPayloadThreshold: Int
    /// Coalescing of reads on load.
    public var readPlan: ReadPlanOptions
    /// When the target directory already holds a committed checkpoint: replace it atomically at
    /// commit (`true`) or refuse (`false`, the default).
    public var overwrite: Bool

    public init(
        filesPerRank: Int = 1, dedup: SavePlanOptions.DedupPolicy = .smallestPlan, direct: Bool = true,
        zipCRC32: Bool = true, writeChecksums: Bool = true, verifyChecksums: Bool = false,
        directPayloadThreshold: Int = 256 << 10, readPlan: ReadPlanOptions = ReadPlanOptions(),
        overwrite: Bool = false
    ) {
        self.filesPerRank = filesPerRank
        self.dedup = dedup
        self.direct = direct
        self.zipCRC32 = zipCRC32
        self.writeChecksums = writeChecksums
        self.verifyChecksums = verifyChecksums
        self.directPayloadThreshold = directPayloadThreshold
        self.readPlan = readPlan
        self.overwrite = overwrite
    }
}
