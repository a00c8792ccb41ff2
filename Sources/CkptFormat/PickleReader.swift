/// A safe pickle reader (protocols 0–5 opcodes used by PyTorch checkpoints). It interprets the
/// stream as a stack machine that only builds an inert object graph, then a ``PickleValue`` tree:
/// nothing is imported or called, globals outside the allow-list are rejected, and all sizes are
/// bounded by ``PickleLimits``. Shared references (the memo) are bounded too: a graph whose tree
/// expansion is too deep, cyclic, or too big (a memo bomb) is refused before any tree is built,
/// in time linear in the input.
public struct PickleReader: Sendable {
    /// Limits applied while decoding.
    public var limits: PickleLimits
    /// Globals that may be referenced.
    public var allowList: PickleAllowList

    /// Creates a reader.
    public init(limits: PickleLimits = .default, allowList: PickleAllowList = .checkpoint) {
        self.limits = limits
        self.allowList = allowList
    }

    /// Result of decoding: the value and the offset just past the `STOP` opcode.
    public struct Decoded: Sendable {
        /// The decoded value.
        public var value: PickleValue
        /// Offset just past `STOP`.
        public var endOffset: Int
    }

    /// Decodes one pickle starting at offset 0 of `bytes`. Bytes after `STOP` are ignored
    /// (see ``Decoded/endOffset``).
    public func decode(_ bytes: UnsafeRawBufferPointer) throws(FormatError) -> Decoded {
        let parsed = try parseGraph(bytes)
        let value = try parsed.graph.materialize(parsed.root, limits: limits, offset: parsed.endOffset)
        return Decoded(value: value, endOffset: parsed.endOffset)
    }

    /// A parsed pickle: its object graph (borrowing the input) and root, checked against every
    /// limit, the expansion limits included.
    struct ParsedGraph {
        var graph: PickleGraph
        var root: Int32
        var endOffset: Int
    }

    /// Runs the stack machine over `bytes`, then refuses graphs whose tree expansion is too deep
    /// (or cyclic) or too big. Shared references (memo) can make a few bytes expand to billions of
    /// nodes: each node's expanded size is computed once on the graph, so a bomb is refused in
    /// time linear in the input. Real checkpoints share little (strings, a layout object): an
    /// expansion far beyond the parsed size is a bomb even when it stays under `maxItems`.
    func parseGraph(_ bytes: UnsafeRawBufferPointer) throws(FormatError) -> ParsedGraph {
        var machine = PickleMachine(buffer: bytes, limits: limits, allowList: allowList)
        let root = try machine.run()
        let end = machine.reader.position
        try machine.graph.checkExpansion(
            root: root, exact: !machine.needsWalk, parsedObjects: machine.nodeCount, limits: limits, offset: end)
        return ParsedGraph(graph: machine.graph, root: root, endOffset: end)
    }

    /// Decodes one pickle from an array.
    public func decode(_ bytes: [UInt8]) throws(FormatError) -> PickleValue {
        do {
            return try bytes.withUnsafeBytes { raw in try decode(raw).value }
        } catch let e as FormatError {
            throw e
        } catch {
            throw FormatError(.invalidValue, "\(error)", offset: 0)
        }
    }
}
