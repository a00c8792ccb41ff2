/// Which tensors the benchmark training state holds per model parameter, and in which precision.
public enum BenchStateMix: String, Sendable, Hashable, Codable, CaseIterable {
    /// Mixed-precision Adam, the common large-model setup: `model.*` in bf16, plus fp32
    /// `optim.state.*.master`, `exp_avg` and `exp_avg_sq` (14 bytes per parameter).
    case mixedPrecisionAdam = "mixed"
    /// Full-precision Adam: `model.*` in fp32 plus fp32 `exp_avg` and `exp_avg_sq` (12 bytes per parameter).
    case fp32Adam = "fp32-adam"
    /// Model weights only, in bf16 (2 bytes per parameter): an inference-style checkpoint.
    case bf16Model = "bf16-model"

    /// Checkpoint bytes per model parameter.
    public var bytesPerParameter: Int {
        switch self {
        case .mixedPrecisionAdam: return 14
        case .fp32Adam: return 12
        case .bf16Model: return 2
        }
    }

    /// Element type of the `model.*` tensors.
    public var modelDType: BenchDType {
        switch self {
        case .mixedPrecisionAdam, .bf16Model: return .bfloat16
        case .fp32Adam: return .float32
        }
    }

    /// Suffixes of the fp32 optimizer tensors kept per parameter, under `optim.state.<param>.`.
    public var optimizerSuffixes: [String] {
        switch self {
        case .mixedPrecisionAdam: return ["master", "exp_avg", "exp_avg_sq"]
        case .fp32Adam: return ["exp_avg", "exp_avg_sq"]
        case .bf16Model: return []
        }
    }
}
