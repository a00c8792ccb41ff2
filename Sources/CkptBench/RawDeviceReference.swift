/// The raw device's bandwidth measured in the same run (large sequential O_DIRECT I/O on the
/// benchmark directory): the ceiling each scenario is compared with.
public struct RawDeviceReference: Sendable, Hashable, Codable {
    /// How it was measured, e.g. `io_uring O_DIRECT, 4 MiB blocks, queue depth 16`.
    public var method: String
    /// Bytes written and read per repeat.
    public var bytes: Int
    /// Per-repeat write seconds, when measured.
    public var write: RepeatStatistics?
    /// Per-repeat read seconds, when measured.
    public var read: RepeatStatistics?
    /// Per-repeat seconds of a copy of the probe file into a new file (read and write at once,
    /// fsync included), when measured.
    public var copy: RepeatStatistics?
    /// Write bandwidth, decimal GB/s over the median.
    public var writeGBps: Double?
    /// Read bandwidth, decimal GB/s over the median.
    public var readGBps: Double?
    /// Copy bandwidth (bytes copied, each counted once), decimal GB/s over the median.
    public var copyGBps: Double?

    /// Creates a reference from per-repeat seconds.
    public init(method: String, bytes: Int, writeSeconds: [Double]?, readSeconds: [Double]?, copySeconds: [Double]? = nil) {
        self.method = method
        self.bytes = bytes
        self.write = writeSeconds.map(RepeatStatistics.init)
        self.read = readSeconds.map(RepeatStatistics.init)
        self.copy = copySeconds.map(RepeatStatistics.init)
        self.writeGBps = write.map { ScenarioResult.gigabytesPerSecond(bytes: bytes, seconds: $0.median) }
        self.readGBps = read.map { ScenarioResult.gigabytesPerSecond(bytes: bytes, seconds: $0.median) }
        self.copyGBps = copy.map { ScenarioResult.gigabytesPerSecond(bytes: bytes, seconds: $0.median) }
    }

    /// The bandwidth a scenario of `direction` is compared with.
    public func gigabytesPerSecond(for direction: ScenarioDirection) -> Double? {
        switch direction {
        case .save: return writeGBps
        case .load: return readGBps
        case .copy: return copyGBps
        }
    }
}
