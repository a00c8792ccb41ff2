/// The element types that appear in the benchmark workload.
///
/// Raw values are the PyTorch dtype names without the `torch.` prefix, so they can be written into
/// reports and compared with DCP metadata directly.
public enum BenchDType: String, Sendable, Hashable, Codable, CaseIterable {
    /// IEEE 754 single precision (fp32 master weights and Adam moments).
    case float32
    /// bfloat16 (the model copy used for the forward/backward pass).
    case bfloat16

    /// Bytes per element.
    public var elementSize: Int {
        switch self {
        case .float32: return 4
        case .bfloat16: return 2
        }
    }

    /// The name PyTorch prints, e.g. `torch.bfloat16`.
    public var torchName: String { "torch.\(rawValue)" }
}
