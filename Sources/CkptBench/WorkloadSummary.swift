import Foundation

/// The parts of a ``BenchWorkload`` a report records.
public struct WorkloadSummary: Sendable, Hashable, Codable {
    /// Model shape.
    public var shape: BenchModelShape
    /// Precision mix.
    public var mix: BenchStateMix
    /// Number of tensors.
    public var tensorCount: Int
    /// Number of non-tensor values.
    public var valueCount: Int
    /// Model parameters.
    public var parameterCount: Int
    /// Bytes of all tensors (the "model state size").
    public var totalBytes: Int

    /// Summarizes `workload`.
    public init(_ workload: BenchWorkload) {
        self.shape = workload.shape
        self.mix = workload.mix
        self.tensorCount = workload.tensors.count
        self.valueCount = workload.values.count
        self.parameterCount = workload.shape.parameterCount
        self.totalBytes = workload.totalBytes
    }

    /// e.g. `GPT-like d=704 L=10 vocab=24336, 76.7M params, mixed, 1.00 GiB in 125 tensors`.
    public var summary: String {
        let params = Double(parameterCount) / 1e6
        return "GPT-like d=\(shape.modelDim) L=\(shape.layers) vocab=\(shape.vocab)"
            + "\(shape.tiedHead ? "" : " untied head"), \(String(format: "%.1f", params))M params, "
            + "\(mix.rawValue), \(ByteFormat.binary(totalBytes)) in \(tensorCount) tensors"
    }
}
