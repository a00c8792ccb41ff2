/// A nested state dict as DCP sees it: string-keyed dictionaries (insertion ordered), lists and
/// leaves.
///
/// Tuples, Python scalars, `None`, tensors and every other value are leaves; whether a leaf is a
/// tensor is decided by the caller (see ``flatten(isTensor:)``), because it changes how lists are
/// flattened.
public indirect enum StateTree<Leaf> {
    /// A mapping; keys are `str(key)` of the original keys, in insertion order.
    case dict([(key: String, value: StateTree<Leaf>)])
    /// A Python list.
    case list([StateTree<Leaf>])
    /// Any other value.
    case leaf(Leaf)
}

extension StateTree: Sendable where Leaf: Sendable {}

extension StateTree {
    /// Flattens the tree exactly as DCP's `flatten_state_dict` (`traverse_state_dict` with
    /// `_keep_visiting_tensors`).
    ///
    /// - Dictionaries are always descended (an empty one contributes nothing).
    /// - A list is descended element-wise only if it is *non-terminal*: one of its elements is a
    ///   tensor, a dictionary, or a non-terminal list. Otherwise the whole list is one leaf.
    /// - fqn = path elements joined with `.`; two paths with the same fqn are an error.
    ///
    /// - Parameter isTensor: Whether a leaf is a tensor (plain, DTensor or sharded).
    /// - Returns: The leaves in traversal order, with their fqn and path.
    /// - Throws: ``StateDictError/rootIsNotADictionary`` if `self` is not ``dict(_:)``,
    ///   ``StateDictError/duplicateFQN(_:firstPath:secondPath:)`` on an fqn clash.
    public func flatten(
        isTensor: (Leaf) -> Bool
    ) throws(StateDictError) -> [FlattenedEntry<Leaf>] {
        guard case .dict(let items) = self else { throw .rootIsNotADictionary }
        var output: [FlattenedEntry<Leaf>] = []
        var seen: [String: Int] = [:]
        var path: [PathElement] = []
        for (key, value) in items {
            path.append(.key(key))
            try Self.traverse(value, path: &path, isTensor: isTensor, output: &output, seen: &seen)
            path.removeLast()
        }
        return output
    }

    private static func traverse(
        _ node: StateTree<Leaf>,
        path: inout [PathElement],
        isTensor: (Leaf) -> Bool,
        output: inout [FlattenedEntry<Leaf>],
        seen: inout [String: Int]
    ) throws(StateDictError) {
        switch node {
        case .dict(let items):
            for (key, value) in items {
                path.append(.key(key))
                try traverse(value, path: &path, isTensor: isTensor, output: &output, seen: &seen)
                path.removeLast()
            }
        case .list(let elements) where !node.isTerminal(isTensor: isTensor):
            for (index, element) in elements.enumerated() {
                path.append(.index(index))
                try traverse(element, path: &path, isTensor: isTensor, output: &output, seen: &seen)
                path.removeLast()
            }
        case .list, .leaf:
            let fqn = PathElement.fqn(of: path)
            if let previous = seen[fqn] {
                throw .duplicateFQN(fqn, firstPath: output[previous].path, secondPath: path)
            }
            seen[fqn] = output.count
            output.append(FlattenedEntry(fqn: fqn, path: path, value: node))
        }
    }

    /// `_is_terminal` of DCP's traversal.
    private func isTerminal(isTensor: (Leaf) -> Bool) -> Bool {
        switch self {
        case .dict:
            return false
        case .leaf:
            return true
        case .list(let elements):
            for element in elements {
                switch element {
                case .dict:
                    return false
                case .list:
                    if !element.isTerminal(isTensor: isTensor) { return false }
                case .leaf(let leaf):
                    if isTensor(leaf) { return false }
                }
            }
            return true
        }
    }

    /// Rebuilds a nested tree from flattened paths with DCP's `set_element` semantics: a `.key`
    /// next element creates a dictionary, an `.index` creates a list, padded with `padding` (Python
    /// `None`) up to the index. Dictionary keys keep first-appearance order.
    ///
    /// Unlike Python, which silently overwrites or raises `TypeError`, contradictory paths are
    /// reported: the same path twice, a value that is also a container prefix of another path, and
    /// a container addressed both by key and by index.
    ///
    /// Paths from untrusted metadata are bounded: at most ``maxPathDepth`` elements, and list
    /// indices below `entries.count + ` ``listPaddingAllowance`` (padding exists only for list
    /// elements that flattened to nothing, such as empty dictionaries).
    ///
    /// - Parameters:
    ///   - entries: `(path, value)` pairs, e.g. from `planner_data`.
    ///   - padding: The value placed in list slots no path sets.
    /// - Returns: A ``dict(_:)`` root.
    public static func unflatten(
        _ entries: [(path: [PathElement], value: StateTree<Leaf>)],
        padding: Leaf
    ) throws(StateDictError) -> StateTree<Leaf> {
        let indexLimit = entries.count + listPaddingAllowance
        for entry in entries {
            guard let first = entry.path.first else { throw .emptyPath }
            guard case .key = first else { throw .rootIsNotADictionary }
            if entry.path.count > maxPathDepth { throw .pathTooDeep(depth: entry.path.count, limit: maxPathDepth) }
            for element in entry.path {
                guard case .index(let position) = element else { continue }
                if position < 0 { throw .negativeListIndex(entry.path) }
                if position >= indexLimit { throw .listIndexTooLarge(entry.path, limit: indexLimit) }
            }
        }
        let indices = Array(entries.indices)
        return try build(entries, indices: indices, depth: 0, padding: padding)
    }

    /// Deepest path ``unflatten(_:padding:)`` accepts (Python's default recursion limit).
    public static var maxPathDepth: Int { 1000 }

    /// List slots beyond the entry count ``unflatten(_:padding:)`` accepts as padding.
    public static var listPaddingAllowance: Int { 65_536 }

    private static func build(
        _ entries: [(path: [PathElement], value: StateTree<Leaf>)],
        indices: [Int],
        depth: Int,
        padding: Leaf
    ) throws(StateDictError) -> StateTree<Leaf> {
        // Leaf here?
        if let leafIndex = indices.first(where: { entries[$0].path.count == depth }) {
            if indices.count > 1 {
                let other = indices.first(where: { $0 != leafIndex }) ?? leafIndex
                throw .conflictingPaths(entries[leafIndex].path, entries[other].path)
            }
            return entries[leafIndex].value
        }
        // Container: its kind comes from the first path that reaches it.
        guard let firstIndex = indices.first else { return .dict([]) }
        switch entries[firstIndex].path[depth] {
        case .key:
            var order: [String] = []
            var groups: [String: [Int]] = [:]
            for index in indices {
                guard case .key(let key) = entries[index].path[depth] else {
                    throw .conflictingPaths(entries[firstIndex].path, entries[index].path)
                }
                if groups[key] == nil { order.append(key) }
                groups[key, default: []].append(index)
            }
            var items: [(key: String, value: StateTree<Leaf>)] = []
            items.reserveCapacity(order.count)
            for key in order {
                let child = try build(entries, indices: groups[key] ?? [], depth: depth + 1, padding: padding)
                items.append((key, child))
            }
            return .dict(items)
        case .index:
            var groups: [Int: [Int]] = [:]
            var count = 0
            for index in indices {
                guard case .index(let position) = entries[index].path[depth] else {
                    throw .conflictingPaths(entries[firstIndex].path, entries[index].path)
                }
                guard position >= 0 else { throw .negativeListIndex(entries[index].path) }
                groups[position, default: []].append(index)
                count = max(count, position + 1)
            }
            var elements: [StateTree<Leaf>] = []
            elements.reserveCapacity(count)
            for position in 0..<count {
                if let group = groups[position] {
                    elements.append(try build(entries, indices: group, depth: depth + 1, padding: padding))
                } else {
                    elements.append(.leaf(padding))
                }
            }
            return .list(elements)
        }
    }
}
