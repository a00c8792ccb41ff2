/// Errors from flattening or rebuilding a nested state dict.
public enum StateDictError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The root of a state dict must be a dictionary.
    case rootIsNotADictionary
    /// Two different paths flatten to the same fully qualified name.
    case duplicateFQN(String, firstPath: [PathElement], secondPath: [PathElement])
    /// A path with no element.
    case emptyPath
    /// Two paths that cannot both hold: the same path twice, a leaf that is also a container prefix
    /// of another path, or one container addressed both by key and by index.
    case conflictingPaths([PathElement], [PathElement])
    /// A list index below zero.
    case negativeListIndex([PathElement])
    /// A list index so large that padding up to it would allocate without bound (hostile or
    /// corrupted `planner_data`).
    case listIndexTooLarge([PathElement], limit: Int)
    /// A path deeper than any state dict DCP can write (its traversal is recursive in Python).
    case pathTooDeep(depth: Int, limit: Int)

    public var description: String {
        switch self {
        case .rootIsNotADictionary:
            return "the root of a state dict must be a dictionary keyed by strings"
        case .duplicateFQN(let fqn, let first, let second):
            return "duplicated flatten key '\(fqn)': produced by path \(Self.show(first)) and by path \(Self.show(second))"
        case .emptyPath:
            return "a state-dict path has no element"
        case .conflictingPaths(let a, let b):
            return "state-dict paths \(Self.show(a)) and \(Self.show(b)) conflict (same slot, or a value that is also a container, or a container indexed by both key and position)"
        case .negativeListIndex(let path):
            return "state-dict path \(Self.show(path)) has a negative list index"
        case .listIndexTooLarge(let path, let limit):
            return "state-dict path \(Self.show(path)) has a list index above the limit \(limit)"
        case .pathTooDeep(let depth, let limit):
            return "a state-dict path has \(depth) elements, more than the limit \(limit)"
        }
    }

    private static func show(_ path: [PathElement]) -> String {
        "(" + path.map { element in
            switch element {
            case .key(let key): return "'\(key)'"
            case .index(let index): return String(index)
            }
        }.joined(separator: ", ") + ")"
    }
}
