public import CkptFormat

/// What a save did, as seen by one rank.
public struct SaveReport: Sendable {
    /// The checkpoint directory.
    public var directory: String
    /// Files this rank wrote.
    public var files: [String]
    /// Tensor payload bytes this rank wrote.
    public var payloadBytes: Int
    /// All bytes this rank wrote (records, padding).
    public var fileBytes: Int
    /// Peak bytes of the I/O engine's buffer pool during the save.
    public var peakBufferBytes: Int
    /// Seconds spent planning (collectives included), writing, and committing.
    public var planSeconds: Double
    public var writeSeconds: Double
    public var commitSeconds: Double
}

/// What a load did, as seen by one rank.
public struct LoadReport: Sendable {
    /// Bytes of tensor data this rank asked for.
    public var neededBytes: Int
    /// Bytes of tensor payload the read plan covers (needed bytes plus bridged gaps; without record
    /// headers).
    public var payloadBytesRead: Int
    /// Every byte transferred: payload reads (those staged through pool buffers widened to whole
    /// 4096-byte blocks for O_DIRECT), whole small records, record heads.
    public var transferredBytes: Int
    /// Bytes of record headers read to locate payloads (heads of large records, and the
    /// non-payload bytes of small records read whole).
    public var headerBytesRead: Int
    /// Number of reads issued (after coalescing).
    public var readCount: Int
    /// Reads that went straight into destination memory.
    public var directReadCount: Int
    /// Chunks whose checksums were verified.
    public var verifiedChunks: Int
    /// Peak bytes of the I/O engine's buffer pool during the load.
    public var peakBufferBytes: Int
    /// Non-tensor values loaded, by fqn.
    public var values: [String: TorchValue]
    /// Wall-clock seconds of each phase on this rank.
    public var phases = LoadPhases()
    /// Whether `.metadata` and the sidecar came from the checkpoint's index (`.ckpt-index`, which
    /// matched them) rather than from decoding the pickle and the JSON.
    public var metadataFromIndex = false
    /// The data pipeline's transfers as issued, in file order (the reads it ran at most the
    /// engine's queue depth at a time): what the device saw of this load, without `.metadata`,
    /// the values and the record heads read before the pipeline. `ckpt-bench` replays it against
    /// the raw device.
    public var dataReads: [LoadRead] = []
}

/// One transfer of a load's data pipeline: `length` bytes of a data file at `offset` (reads
/// staged through pool buffers widened to whole 4096-byte blocks, as issued).
public struct LoadRead: Sendable, Hashable, Codable {
    /// The data file, relative to the checkpoint directory.
    public var file: String
    public var offset: Int
    public var length: Int

    public init(file: String, offset: Int, length: Int) {
        self.file = file
        self.offset = offset
        self.length = length
    }
}

/// Where a load's time went on one rank (seconds, wall clock).
public struct LoadPhases: Sendable, Codable, Hashable {
    /// Reading, broadcasting and decoding `.metadata` (and the sidecar; or their index).
    public var metadata: Double = 0
    /// Planning overlaps and opening files.
    public var plan: Double = 0
    /// Reading the heads of records whose payload location could not be predicted (before the
    /// data reads; records of standard layout have their heads checked inside `reads`).
    public var heads: Double = 0
    /// The data pipeline: small records read whole, payload ranges, head checks, scatter.
    public var reads: Double = 0
    /// Values and checksum verification.
    public var finish: Double = 0
}

