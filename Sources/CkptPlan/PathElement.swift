/// One step of a state-dict path: a dictionary key or a list index.
///
/// DCP's `planner_data` stores paths as tuples whose elements are `str` (dictionary keys, always
/// stringified) or `int` (list indices); this type mirrors exactly that distinction.
public enum PathElement: Hashable, Sendable, CustomStringConvertible {
    /// A dictionary key (`str(key)` of the original key).
    case key(String)
    /// A list index.
    case index(Int)

    /// The text this element contributes to a fully qualified name (`str(p)` in Python).
    public var description: String {
        switch self {
        case .key(let key): return key
        case .index(let index): return String(index)
        }
    }

    /// The fully qualified name of a path: its elements joined with `.`, as DCP does.
    public static func fqn(of path: [PathElement]) -> String {
        path.map(\.description).joined(separator: ".")
    }
}
