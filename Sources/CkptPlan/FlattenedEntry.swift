/// One leaf of a flattened state dict.
public struct FlattenedEntry<Leaf> {
    /// Fully qualified name: the path joined with `.`.
    public var fqn: String
    /// The path from the root (`planner_data[fqn]` in DCP metadata).
    public var path: [PathElement]
    /// The leaf: a ``StateTree/leaf(_:)``, or a whole ``StateTree/list(_:)`` kept as one value
    /// because it contains no tensor and no dictionary.
    public var value: StateTree<Leaf>

    /// Creates an entry.
    public init(fqn: String, path: [PathElement], value: StateTree<Leaf>) {
        self.fqn = fqn
        self.path = path
        self.value = value
    }
}

extension FlattenedEntry: Sendable where Leaf: Sendable {}
