/// Summary of the per-repeat wall times (seconds) of one measurement.
public struct RepeatStatistics: Sendable, Hashable, Codable {
    /// The samples, in the order measured.
    public let samples: [Double]
    /// Median (mean of the two middle values for an even count); 0 when empty.
    public let median: Double
    /// Smallest sample; 0 when empty.
    public let min: Double
    /// Largest sample; 0 when empty.
    public let max: Double
    /// Arithmetic mean; 0 when empty.
    public let mean: Double

    /// Summarizes `samples`.
    public init(_ samples: [Double]) {
        self.samples = samples
        self.median = Self.median(samples) ?? 0
        self.min = samples.min() ?? 0
        self.max = samples.max() ?? 0
        self.mean = samples.isEmpty ? 0 : samples.reduce(0, +) / Double(samples.count)
    }

    /// The median of `values`, nil when empty. For an even count, the mean of the two middle values.
    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        if sorted.count % 2 == 1 { return sorted[middle] }
        return (sorted[middle - 1] + sorted[middle]) / 2
    }
}
