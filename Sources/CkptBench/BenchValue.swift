/// A non-tensor value of the training state (step counter, learning rate, ...).
public enum BenchValue: Sendable, Hashable, Codable, CustomStringConvertible {
    /// An integer, e.g. the global step.
    case int(Int)
    /// A floating-point number, e.g. the learning rate.
    case double(Double)
    /// A string, e.g. the name of the LR schedule.
    case string(String)
    /// A boolean flag.
    case bool(Bool)

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .string(let v): return "\"\(v)\""
        case .bool(let v): return v ? "true" : "false"
        }
    }
}
