/// What a ``MemorySampler`` saw between `start()` and `stop()`. All sizes in bytes.
public struct MemoryReport: Sendable, Hashable, Codable {
    /// Resident set size when sampling started.
    public var baselineRSS: Int
    /// Highest resident set size sampled.
    public var peakRSS: Int
    /// `peakRSS - baselineRSS` (never negative).
    public var peakExtraRSS: Int
    /// `getrusage(RUSAGE_SELF).ru_maxrss` at stop: the process-lifetime maximum, monotonic.
    public var maxRSSLifetime: Int
    /// Highest value of the external gauge, when one was given.
    public var gaugePeak: Int?
    /// Number of samples taken.
    public var samples: Int
    /// Wall time sampled, in seconds.
    public var seconds: Double

    /// Creates a report.
    public init(
        baselineRSS: Int, peakRSS: Int, peakExtraRSS: Int, maxRSSLifetime: Int, gaugePeak: Int?,
        samples: Int, seconds: Double
    ) {
        self.baselineRSS = baselineRSS
        self.peakRSS = peakRSS
        self.peakExtraRSS = peakExtraRSS
        self.maxRSSLifetime = maxRSSLifetime
        self.gaugePeak = gaugePeak
        self.samples = samples
        self.seconds = seconds
    }
}
