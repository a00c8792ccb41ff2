/// The object graph a pickle stream builds, stored flat: nodes in one array, container children as
/// linked runs (segments) of one shared edge array, objects in a side table. Lists, dicts and sets
/// are shared by reference through the memo exactly like Python objects (a node id on the stack is
/// a reference), and may grow after they were shared (APPEND / SETITEM on a memoized container).
///
/// Leaves hold no Swift objects: strings, bytes and big integers are ranges of the input buffer
/// (validated while parsing), numbers are stored inline, globals are indices into ``globals``
/// (interned per distinct spelling, each checked against the allow-list once). Nothing is
/// allocated per node beyond amortized array growth.
///
/// The graph borrows the input buffer: it must not outlive the `decode` call that built it.
struct PickleGraph {
    enum Kind: UInt8 {
        case none, bool, int, float, bigInt, string, bytes, byteArray, global
        case tuple, list, dict, set, frozenSet, object, persistentID
    }

    /// A child list: a chain of segments (`-1`: none) and the total number of children.
    struct Children {
        var head: Int32 = -1
        var tail: Int32 = -1
        var count: Int32 = 0
    }

    /// One node. Payload by kind: bool/int: `a` (value); float: `a` (bit pattern); string, bytes,
    /// byteArray, bigInt: input range `a ..< a + b` (bigInt: minimal two's complement); global: `a`
    /// indexes ``globals``; object: `a` indexes ``objects``; persistentID: `a` is the pid node;
    /// tuple, list, dict (flattened key, value pairs), set, frozenSet: ``children``.
    struct Node {
        var a = 0
        var b = 0
        /// Nodes of the tree this node expands to (shared references copied), saturating above
        /// `maxItems`. Exact while ``PickleMachine/needsWalk`` is false.
        var size = 1
        var children = Children()
        /// Longest path (in nodes) down from this node; exact like ``size``.
        var height: Int32 = 1
        var kind: Kind
        /// Pushed more than once (memo GET, DUP): materialized once and shared.
        var shared = false
        /// Already a child of some node (its size and height were added to its parent's).
        var sealed = false

        init(_ kind: Kind, a: Int = 0, b: Int = 0) {
            self.kind = kind
            self.a = a
            self.b = b
        }
    }

    /// A run of `count` edges starting at `start` in ``edges``, then the segment `next` (`-1`: end).
    struct Segment {
        var start: Int32
        var count: Int32
        var next: Int32 = -1
    }

    /// The result of REDUCE / NEWOBJ (+ BUILD, APPEND(S), SETITEM(S)).
    struct Object {
        var construction: PickleObject.Construction
        /// A `.global` node (checked while parsing).
        var callable: Int32
        /// A `.tuple` node (checked while parsing).
        var args: Int32
        /// The BUILD state, `-1` when none.
        var state: Int32 = -1
        var listItems = Children()
        var dictItems = Children()
    }

    /// An allowed global, interned per distinct byte spelling.
    struct Global {
        var module: String
        var name: String
    }

    let buffer: UnsafeRawBufferPointer
    var nodes: ContiguousArray<Node> = []
    var segments: ContiguousArray<Segment> = []
    var edges: ContiguousArray<Int32> = []
    var objects: ContiguousArray<Object> = []
    var globals: ContiguousArray<Global> = []

    init(buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
    }

    /// The input bytes of a range leaf.
    @inline(__always)
    func bytes(_ node: Node) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[node.a..<(node.a + node.b)])
    }

    /// The string of a `.string` node (its bytes were validated as UTF-8 while parsing).
    @inline(__always)
    func string(_ node: Node) -> String {
        String(decoding: bytes(node), as: UTF8.self)
    }

    /// Walks the children of a list in order.
    struct ChildCursor {
        var segment: Int32
        var position = 0
        var end = 0

        init(_ children: Children) {
            segment = children.head
        }

        @inline(__always)
        mutating func next(_ graph: borrowing PickleGraph) -> Int32? {
            while position == end {
                guard segment >= 0 else { return nil }
                let s = graph.segments[Int(segment)]
                position = Int(s.start)
                end = position + Int(s.count)
                segment = s.next
            }
            let id = graph.edges[position]
            position += 1
            return id
        }
    }

    /// The child at `index` (which must be below `children.count`).
    func child(_ children: Children, at index: Int) -> Int32 {
        var segment = children.head
        var i = index
        while segment >= 0 {
            let s = segments[Int(segment)]
            if i < Int(s.count) { return edges[Int(s.start) + i] }
            i -= Int(s.count)
            segment = s.next
        }
        return -1
    }
}

// MARK: - Expansion guard

extension PickleGraph {
    /// Refuses graphs whose tree expansion (shared references copied) is too deep (cycles
    /// included) or too big: more than `maxItems` nodes, or more than `max(2^20, 64 x parsed
    /// objects)` (a memo bomb). Refuses exactly what materializing the tree under the same limits
    /// would refuse, without building it.
    ///
    /// `exact`: the machine kept every node's expanded size and height up to date (no node was
    /// changed after it became a child), so the root's are the answer. Otherwise (a container
    /// grown after it was shared, a cycle) the graph is walked: linear, as each node's expanded
    /// size and height are computed once and a node reached again is only checked against the
    /// depth it is reached at.
    func checkExpansion(root: Int32, exact: Bool, parsedObjects: Int, limits: PickleLimits, offset: Int) throws(FormatError) {
        let expanded: Int
        if exact {
            let r = nodes[Int(root)]
            guard Int(r.height) <= limits.maxDepth else {
                throw FormatError(.limitExceeded, "pickle value nesting deeper than \(limits.maxDepth) (or cyclic)", offset: offset)
            }
            guard r.size <= limits.maxItems else {
                throw FormatError(
                    .limitExceeded, "pickle value expands to more than \(limits.maxItems) items (shared references)", offset: offset)
            }
            expanded = r.size
        } else {
            var walk = ExpansionWalk(graph: self, limits: limits, offset: offset)
            expanded = try walk.visit(root, depth: 0).size
        }
        let (scaled, overflow) = parsedObjects.multipliedReportingOverflow(by: 64)
        guard expanded <= Swift.max(1 << 20, overflow ? Int.max : scaled) else {
            throw FormatError(
                .limitExceeded,
                "pickle of \(parsedObjects) objects expands to \(expanded) through shared references (refused as a memo bomb)",
                offset: offset)
        }
    }

    struct ExpansionWalk {
        let graph: PickleGraph
        let limits: PickleLimits
        let offset: Int
        /// Expanded size per node (0: not computed yet), and longest path in nodes below it.
        var sizes: ContiguousArray<Int>
        var heights: ContiguousArray<Int>

        init(graph: PickleGraph, limits: PickleLimits, offset: Int) {
            self.graph = graph
            self.limits = limits
            self.offset = offset
            sizes = ContiguousArray(repeating: 0, count: graph.nodes.count)
            heights = ContiguousArray(repeating: 0, count: graph.nodes.count)
        }

        func tooDeep() -> FormatError {
            FormatError(.limitExceeded, "pickle value nesting deeper than \(limits.maxDepth) (or cyclic)", offset: offset)
        }

        mutating func visit(_ id: Int32, depth: Int) throws(FormatError) -> (size: Int, height: Int) {
            guard depth < limits.maxDepth else { throw tooDeep() }
            let node = graph.nodes[Int(id)]
            switch node.kind {
            case .none, .bool, .int, .float, .bigInt, .string, .bytes, .byteArray, .global:
                return (1, 1)
            default:
                break
            }
            let known = sizes[Int(id)]
            if known != 0 {
                // Its deepest node sits at depth + height - 1.
                guard heights[Int(id)] <= limits.maxDepth - depth else { throw tooDeep() }
                return (known, heights[Int(id)])
            }
            var total = 1
            var height = 0
            switch node.kind {
            case .object:
                let o = graph.objects[node.a]
                try add(o.callable, depth, &total, &height)
                try add(o.args, depth, &total, &height)
                try addAll(o.listItems, depth, &total, &height)
                try addAll(o.dictItems, depth, &total, &height)
                if o.state >= 0 { try add(o.state, depth, &total, &height) }
            case .persistentID:
                try add(Int32(node.a), depth, &total, &height)
            default:
                try addAll(node.children, depth, &total, &height)
            }
            sizes[Int(id)] = total
            heights[Int(id)] = height + 1
            return (total, height + 1)
        }

        @inline(__always)
        mutating func add(_ child: Int32, _ depth: Int, _ total: inout Int, _ height: inout Int) throws(FormatError) {
            let r = try visit(child, depth: depth + 1)
            let (sum, overflow) = total.addingReportingOverflow(r.size)
            guard !overflow, sum <= limits.maxItems else {
                throw FormatError(
                    .limitExceeded, "pickle value expands to more than \(limits.maxItems) items (shared references)", offset: offset)
            }
            total = sum
            height = Swift.max(height, r.height)
        }

        mutating func addAll(_ children: Children, _ depth: Int, _ total: inout Int, _ height: inout Int) throws(FormatError) {
            var cursor = ChildCursor(children)
            while let c = cursor.next(graph) { try add(c, depth, &total, &height) }
        }
    }
}

// MARK: - Materializing a PickleValue tree

extension PickleGraph {
    /// Builds the value tree of `root`. Call after ``checkExpansion(root:parsedObjects:limits:offset:)``
    /// (which bounds the size and depth of the result); the depth is checked again here so the
    /// recursion stays bounded on its own. Shared nodes are materialized once.
    func materialize(_ root: Int32, limits: PickleLimits, offset: Int) throws(FormatError) -> PickleValue {
        var cache: [Int32: PickleValue] = [:]
        return try materialize(root, depth: 0, cache: &cache, limits: limits, offset: offset)
    }

    private func materialize(
        _ id: Int32, depth: Int, cache: inout [Int32: PickleValue], limits: PickleLimits, offset: Int
    ) throws(FormatError) -> PickleValue {
        guard depth < limits.maxDepth else {
            throw FormatError(.limitExceeded, "pickle value nesting deeper than \(limits.maxDepth) (or cyclic)", offset: offset)
        }
        let node = nodes[Int(id)]
        switch node.kind {
        case .none: return .none
        case .bool: return .bool(node.a != 0)
        case .int: return .int(Int64(node.a))
        case .float: return .float(Double(bitPattern: UInt64(UInt(bitPattern: node.a))))
        case .bigInt: return .bigInt(Array(bytes(node)))
        case .string where !node.shared: return .string(string(node))
        case .bytes: return .bytes(Array(bytes(node)))
        case .byteArray: return .byteArray(Array(bytes(node)))
        case .global: return .global(module: globals[node.a].module, name: globals[node.a].name)
        default: break
        }
        if node.shared, let v = cache[id] { return v }
        func list(_ c: Children, _ cache: inout [Int32: PickleValue]) throws(FormatError) -> [PickleValue] {
            var out: [PickleValue] = []
            out.reserveCapacity(Int(c.count))
            var cursor = ChildCursor(c)
            while let child = cursor.next(self) {
                out.append(try materialize(child, depth: depth + 1, cache: &cache, limits: limits, offset: offset))
            }
            return out
        }
        let value: PickleValue
        switch node.kind {
        case .string: value = .string(string(node))
        case .tuple: value = .tuple(try list(node.children, &cache))
        case .list: value = .list(try list(node.children, &cache))
        case .set: value = .set(try list(node.children, &cache))
        case .frozenSet: value = .frozenSet(try list(node.children, &cache))
        case .dict: value = .dict(Self.pairs(try list(node.children, &cache)))
        case .object:
            let o = objects[node.a]
            let callable = try materialize(o.callable, depth: depth + 1, cache: &cache, limits: limits, offset: offset)
            let args = try materialize(o.args, depth: depth + 1, cache: &cache, limits: limits, offset: offset)
            var state: PickleValue?
            if o.state >= 0 { state = try materialize(o.state, depth: depth + 1, cache: &cache, limits: limits, offset: offset) }
            value = .object(
                PickleObject(
                    construction: o.construction, callable: callable, args: args, state: state,
                    listItems: try list(o.listItems, &cache), dictItems: Self.pairs(try list(o.dictItems, &cache))))
        case .persistentID:
            value = .persistentID(try materialize(Int32(node.a), depth: depth + 1, cache: &cache, limits: limits, offset: offset))
        default:
            value = .none  // leaves returned above
        }
        if node.shared { cache[id] = value }
        return value
    }

    static func pairs(_ flat: [PickleValue]) -> [PickleDictEntry] {
        var entries: [PickleDictEntry] = []
        entries.reserveCapacity(flat.count / 2)
        var i = 0
        while i + 1 < flat.count {
            entries.append(PickleDictEntry(flat[i], flat[i + 1]))
            i += 2
        }
        return entries
    }
}
