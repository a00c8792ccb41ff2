/// Why a benchmark run stopped. Descriptions are written for the person at the terminal.
public enum BenchRunError: Error, Sendable, CustomStringConvertible {
    /// A loaded buffer does not hold the content that was saved: the engine returned wrong bytes.
    case verificationFailed(rank: Int, mismatch: BenchContentMismatch)
    /// A loaded non-tensor value differs from the saved one.
    case valueMismatch(rank: Int, fqn: String, expected: String, actual: String)
    /// A scenario failed; `underlying` says why.
    case scenarioFailed(scenario: String, underlying: String)

    public var description: String {
        switch self {
        case .verificationFailed(let rank, let mismatch):
            return "verification failed on rank \(rank): \(mismatch) (the engine loaded wrong bytes; the timing is void)"
        case .valueMismatch(let rank, let fqn, let expected, let actual):
            return "verification failed on rank \(rank): value '\(fqn)' is \(actual), expected \(expected)"
        case .scenarioFailed(let scenario, let underlying):
            return "scenario '\(scenario)' failed: \(underlying)"
        }
    }
}
