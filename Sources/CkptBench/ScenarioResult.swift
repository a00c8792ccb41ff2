/// The measurements of one benchmark scenario (e.g. "sharded save, 4 ranks").
///
/// Throughput is in decimal gigabytes per second (1 GB = 10^9 bytes) of ``bytesMoved`` over the
/// median repeat time.
public struct ScenarioResult: Sendable, Hashable, Codable {
    /// Short unique name, e.g. `save sharded 4r`.
    public var name: String
    /// Group for charts and tables, e.g. `sharded`, `single-file`, `async`.
    public var group: String
    /// Save or load.
    public var direction: ScenarioDirection
    /// Checkpoint bytes written or delivered per repeat (the state size for full saves/loads).
    public var bytesMoved: Int
    /// Per-repeat wall time.
    public var time: RepeatStatistics
    /// `bytesMoved / time.median / 1e9`; 0 when no time was measured.
    public var throughputGBps: Double
    /// Throughput divided by the raw device's bandwidth in the same direction; set by
    /// ``BenchReport``, against ``adjacentRaw`` when measured, else the run's up-front probe.
    public var rawDeviceRatio: Double?
    /// Per-repeat seconds of the raw-device probe run right before each repeat of this scenario
    /// (the same bytes, directory and direction: write, read or copy), so a drift of the device's
    /// speed during the run cancels out of the ratio.
    public var adjacentRaw: RepeatStatistics?
    /// The adjacent probe's bandwidth, decimal GB/s over its median.
    public var adjacentRawGBps: Double?
    /// Peak resident set size during the scenario, bytes.
    public var peakRSSBytes: Int?
    /// Peak RSS over the baseline taken at the scenario's start, bytes.
    public var peakExtraBytes: Int?
    /// Peak bytes held by the I/O engine's buffer pool.
    public var engineBufferPeakBytes: Int?
    /// Loads: bytes actually read from storage.
    public var bytesRead: Int?
    /// Loads: bytes the requested layout needed.
    public var bytesNeeded: Int?
    /// Async saves: per-repeat seconds the caller was blocked (until it could resume training).
    public var callerBlocked: RepeatStatistics?
    /// Async saves: per-repeat seconds until the checkpoint was durable and committed.
    public var commit: RepeatStatistics?
    /// Breakdown of the time into phases (e.g. gather vs write).
    public var phases: [ScenarioPhase]
    /// Ranks that saved (or that wrote the checkpoint being loaded).
    public var ranks: Int?
    /// Ranks that loaded (resharded loads: differs from ``ranks``).
    public var loadRanks: Int?
    /// Loads: per-repeat seconds of the raw device replaying the load's data reads (the same
    /// files, offsets, lengths and order, the same queue depth per rank, cold, nothing decoded),
    /// run right after each repeat: the device's speed at this load's own request pattern.
    public var patternRaw: RepeatStatistics?
    /// Free-form remarks shown in the table's notes column.
    public var notes: [String]

    /// Creates a result; ``throughputGBps`` is derived from `bytesMoved` and `seconds`.
    public init(
        name: String,
        group: String,
        direction: ScenarioDirection,
        bytesMoved: Int,
        seconds: [Double],
        peakRSSBytes: Int? = nil,
        peakExtraBytes: Int? = nil,
        engineBufferPeakBytes: Int? = nil,
        bytesRead: Int? = nil,
        bytesNeeded: Int? = nil,
        callerBlockedSeconds: [Double]? = nil,
        commitSeconds: [Double]? = nil,
        phases: [ScenarioPhase] = [],
        ranks: Int? = nil,
        loadRanks: Int? = nil,
        notes: [String] = []
    ) {
        self.name = name
        self.group = group
        self.direction = direction
        self.bytesMoved = bytesMoved
        self.time = RepeatStatistics(seconds)
        self.throughputGBps = Self.gigabytesPerSecond(bytes: bytesMoved, seconds: time.median)
        self.rawDeviceRatio = nil
        self.peakRSSBytes = peakRSSBytes
        self.peakExtraBytes = peakExtraBytes
        self.engineBufferPeakBytes = engineBufferPeakBytes
        self.bytesRead = bytesRead
        self.bytesNeeded = bytesNeeded
        self.callerBlocked = callerBlockedSeconds.map(RepeatStatistics.init)
        self.commit = commitSeconds.map(RepeatStatistics.init)
        self.phases = phases
        self.ranks = ranks
        self.loadRanks = loadRanks
        self.notes = notes
    }

    /// This result with the adjacent probe's per-repeat seconds for `bytes` bytes.
    public func withAdjacentRaw(seconds: [Double], bytes: Int) -> ScenarioResult {
        guard !seconds.isEmpty else { return self }
        var result = self
        result.adjacentRaw = RepeatStatistics(seconds)
        result.adjacentRawGBps = result.adjacentRaw.map { Self.gigabytesPerSecond(bytes: bytes, seconds: $0.median) }
        return result
    }

    /// This result with the read replay's per-repeat seconds (``patternRaw``).
    public func withPatternReplay(seconds: [Double]) -> ScenarioResult {
        guard !seconds.isEmpty else { return self }
        var result = self
        result.patternRaw = RepeatStatistics(seconds)
        return result
    }

    /// The replay's median time over the load's (1 = the load is as fast as the device reading
    /// its requests and nothing else), when replayed.
    public var patternRatio: Double? {
        guard let patternRaw, time.median > 0 else { return nil }
        return patternRaw.median / time.median
    }

    /// Decimal GB/s (1 GB = 1e9 bytes); 0 for a non-positive time.
    public static func gigabytesPerSecond(bytes: Int, seconds: Double) -> Double {
        seconds > 0 ? Double(bytes) / seconds / 1e9 : 0
    }

    /// `bytesRead / bytesNeeded` for loads (read amplification), when both are known.
    public var readAmplification: Double? {
        guard let bytesRead, let bytesNeeded, bytesNeeded > 0 else { return nil }
        return Double(bytesRead) / Double(bytesNeeded)
    }
}
