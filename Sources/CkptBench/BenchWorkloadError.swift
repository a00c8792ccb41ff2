/// Why a workload could not be built or laid out.
public enum BenchWorkloadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The requested size is not positive or too large to model.
    case invalidSize(bytes: Int, reason: String)
    /// The rank count is not positive.
    case invalidRanks(Int)

    public var description: String {
        switch self {
        case .invalidSize(let bytes, let reason):
            return "cannot build a workload of \(bytes) bytes: \(reason)"
        case .invalidRanks(let ranks):
            return "rank count must be at least 1, got \(ranks)"
        }
    }
}
