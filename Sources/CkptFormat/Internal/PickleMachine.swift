/// The pickle stack machine: interprets opcodes into a ``PickleGraph`` (never imports or calls
/// anything). Every limit of ``PickleLimits`` that applies while parsing is checked before the
/// corresponding growth: stack + marks depth, pushed items, string lengths, memo entries.
struct PickleMachine {
    var reader: ByteReader
    let limits: PickleLimits
    let allowList: PickleAllowList
    var graph: PickleGraph
    var stack: ContiguousArray<Int32> = []
    var marks: ContiguousArray<Int> = []
    /// Memo: dense indices (MEMOIZE, sequential BINPUT) in an array (`-1`: unset), sparse ones in a
    /// dictionary.
    var memoDense: ContiguousArray<Int32> = []
    var memoSparse: [Int: Int32] = [:]
    var memoCount = 0
    /// Values pushed so far (new objects and memo / DUP references), bounded by `maxItems`.
    var nodeCount = 0
    var opOffset = 0
    /// `limits.maxItems`, capped so that node, edge and segment indices fit `Int32`.
    let itemLimit: Int
    /// Byte spellings of ``PickleGraph/globals``, for interning without building strings.
    var globalSpellings: [(module: [UInt8], name: [UInt8])] = []
    /// Set when a node changed after it became a child (or joined itself): the expanded sizes kept
    /// per node are then stale and the expansion guard walks the graph instead.
    var needsWalk = false
    /// Expanded sizes saturate here (just above `maxItems`).
    let sizeCap: Int

    init(buffer: UnsafeRawBufferPointer, limits: PickleLimits, allowList: PickleAllowList) {
        self.reader = ByteReader(buffer)
        self.limits = limits
        self.allowList = allowList
        self.graph = PickleGraph(buffer: buffer)
        self.itemLimit = Swift.min(limits.maxItems, Int(Int32.max) - 1)
        self.sizeCap = limits.maxItems < Int.max ? Swift.max(limits.maxItems, 0) + 1 : Int.max
        // About one value per 3 bytes in real pickles. Reserved pages cost no memory until used,
        // but the cap keeps a huge input (a large bytes payload) from reserving gigabytes:
        // past it the arrays grow geometrically.
        let guess = Swift.min(buffer.count / 3, itemLimit, 1 << 20) + 16
        graph.nodes.reserveCapacity(guess)
        graph.edges.reserveCapacity(guess)
        memoDense.reserveCapacity(Swift.min(guess, limits.maxMemoEntries))
    }

    func fail(_ code: FormatError.Code, _ message: String) -> FormatError {
        FormatError(code, message, offset: opOffset)
    }

    // MARK: Stack

    @inline(__always)
    mutating func push(_ id: Int32) throws(FormatError) {
        guard stack.count + marks.count < limits.maxStackDepth else {
            throw fail(.limitExceeded, "pickle stack deeper than \(limits.maxStackDepth)")
        }
        guard nodeCount < itemLimit else {
            throw fail(.limitExceeded, "pickle has more than \(itemLimit) items")
        }
        nodeCount += 1
        stack.append(id)
    }

    /// Adds a node to the graph and pushes it.
    @inline(__always)
    mutating func push(new node: PickleGraph.Node) throws(FormatError) {
        guard stack.count + marks.count < limits.maxStackDepth else {
            throw fail(.limitExceeded, "pickle stack deeper than \(limits.maxStackDepth)")
        }
        guard nodeCount < itemLimit else {
            throw fail(.limitExceeded, "pickle has more than \(itemLimit) items")
        }
        nodeCount += 1
        // nodes.count <= nodeCount <= itemLimit < Int32.max.
        stack.append(Int32(graph.nodes.count))
        graph.nodes.append(node)
    }

    /// Pushes a reference to an existing node (memo GET, DUP).
    @inline(__always)
    mutating func push(shared id: Int32) throws(FormatError) {
        try push(id)
        if !graph.nodes[Int(id)].shared { graph.nodes[Int(id)].shared = true }
    }

    @inline(__always)
    var floor: Int { marks.last ?? 0 }

    @inline(__always)
    mutating func pop(_ what: @autoclosure () -> String) throws(FormatError) -> Int32 {
        guard stack.count > floor, let n = stack.popLast() else {
            throw fail(.invalidValue, "expected \(what()) on the pickle stack, found it empty")
        }
        return n
    }

    @inline(__always)
    func top(_ what: @autoclosure () -> String) throws(FormatError) -> Int32 {
        guard stack.count > floor, let n = stack.last else {
            throw fail(.invalidValue, "expected \(what()) on the pickle stack, found it empty")
        }
        return n
    }

    /// Pops the topmost mark; the items above it are `stack[returned...]` (still on the stack).
    @inline(__always)
    mutating func popMark() throws(FormatError) -> Int {
        guard let m = marks.popLast() else {
            throw fail(.invalidValue, "expected a MARK on the stack")
        }
        return m
    }

    /// Pushes a new container whose children are `stack[from...]` (removed from the stack).
    mutating func pushContainer(_ kind: PickleGraph.Kind, from m: Int) throws(FormatError) {
        var node = PickleGraph.Node(kind)
        let (size, height) = link(&node.children, owner: -1, from: m)
        node.size = addSizes(1, size)
        node.height = height &+ 1
        try push(new: node)
    }

    // MARK: Children and expanded sizes

    @inline(__always)
    func addSizes(_ a: Int, _ b: Int) -> Int {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow || s > sizeCap ? sizeCap : s
    }

    /// Makes `id` a child: returns its expanded size and height, and marks it sealed.
    @inline(__always)
    mutating func seal(_ id: Int32) -> (size: Int, height: Int32) {
        let n = graph.nodes[Int(id)]
        if !n.sealed { graph.nodes[Int(id)].sealed = true }
        return (n.size, n.height)
    }

    /// Before `owner` gains children: a sealed node's size was already added to its parents'.
    @inline(__always)
    mutating func willChange(_ owner: Int32) {
        if graph.nodes[Int(owner)].sealed { needsWalk = true }
    }

    /// Adds the expanded size and height of new children to `owner`.
    @inline(__always)
    mutating func grow(_ owner: Int32, by size: Int, height: Int32) {
        let i = Int(owner)
        graph.nodes[i].size = addSizes(graph.nodes[i].size, size)
        if height >= graph.nodes[i].height { graph.nodes[i].height = height &+ 1 }
    }

    /// Moves `stack[m...]` to the end of the child list `list` of `owner` (`-1`: a node not in the
    /// graph yet), sealing them; returns their summed expanded size and greatest height. Extends
    /// the list's last segment when it ends where the new edges start (a container filled in one
    /// go, or batch after batch with nothing in between).
    mutating func link(_ list: inout PickleGraph.Children, owner: Int32, from m: Int) -> (size: Int, height: Int32) {
        let n = stack.count - m
        guard n > 0 else { return (0, 0) }
        let start = graph.edges.count
        var total = 0
        var height: Int32 = 0
        for i in m..<stack.count {
            let c = stack[i]
            if c == owner { needsWalk = true }
            let (s, h) = seal(c)
            total = addSizes(total, s)
            if h > height { height = h }
            graph.edges.append(c)
        }
        stack.removeLast(n)
        if list.tail >= 0, Int(graph.segments[Int(list.tail)].start) + Int(graph.segments[Int(list.tail)].count) == start {
            graph.segments[Int(list.tail)].count += Int32(n)
        } else {
            // Edges and segments never outnumber pushed values (< Int32.max).
            graph.segments.append(PickleGraph.Segment(start: Int32(start), count: Int32(n)))
            let s = Int32(graph.segments.count - 1)
            if list.tail >= 0 { graph.segments[Int(list.tail)].next = s } else { list.head = s }
            list.tail = s
        }
        list.count += Int32(n)
        return (total, height)
    }

    // MARK: Memo

    mutating func memoPut(_ index: Int) throws(FormatError) {
        let node = try top("a value to memoize")
        if index < memoDense.count {
            if memoDense[index] < 0 { try countMemoEntry() }
            memoDense[index] = node
        } else if index == memoDense.count {
            // (An index first stored sparsely and then reached by the dense run is one entry.)
            if memoSparse.isEmpty || memoSparse[index] == nil { try countMemoEntry() }
            memoDense.append(node)
        } else {
            if memoSparse[index] == nil { try countMemoEntry() }
            memoSparse[index] = node
        }
    }

    @inline(__always)
    mutating func countMemoEntry() throws(FormatError) {
        guard memoCount < limits.maxMemoEntries else {
            throw fail(.limitExceeded, "pickle memo larger than \(limits.maxMemoEntries) entries")
        }
        memoCount += 1
    }

    mutating func memoGet(_ index: Int) throws(FormatError) {
        let found = index < memoDense.count ? memoDense[index] : (memoSparse[index] ?? -1)
        guard found >= 0 else {
            throw fail(.invalidValue, "memo key \(index) was never stored")
        }
        try push(shared: found)
    }

    // MARK: Operands

    mutating func readLength(_ raw: UInt64, _ what: String) throws(FormatError) -> Int {
        guard raw <= UInt64(limits.maxStringLength) else {
            throw fail(.limitExceeded, "\(what) length \(raw) exceeds limit \(limits.maxStringLength)")
        }
        let n = Int(raw)
        guard n <= reader.remaining else {
            throw FormatError(.truncated, "\(what) declares \(n) bytes but only \(reader.remaining) remain", offset: reader.position)
        }
        return n
    }

    /// Pushes a validated UTF-8 string of `n` bytes (a range of the input).
    mutating func pushString(_ n: Int) throws(FormatError) {
        let start = reader.position
        let raw = try reader.bytes(n, "string bytes")
        try Self.validateUTF8(raw, offset: start, what: "pickle string")
        try push(new: PickleGraph.Node(.string, a: start, b: n))
    }

    @inline(__always)
    static func isASCII(_ p: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = p.count
        while i + 8 <= n {
            if p.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            i += 8
        }
        while i < n {
            if p[i] & 0x80 != 0 { return false }
            i += 1
        }
        return true
    }

    @inline(__always)
    static func validateUTF8(_ p: UnsafeRawBufferPointer, offset: Int, what: @autoclosure () -> String) throws(FormatError) {
        if isASCII(p) { return }
        guard String(validating: p, as: UTF8.self) != nil else {
            throw FormatError(.invalidValue, "expected valid UTF-8 in \(what())", offset: offset)
        }
    }

    /// The bytes of a newline-terminated line (without the newline), validated as UTF-8.
    mutating func readLineBytes(_ what: String) throws(FormatError) -> UnsafeRawBufferPointer {
        let start = reader.position
        var end = start
        let limit = Swift.min(reader.buffer.count, start + 4096)
        while end < limit && reader.buffer[end] != 0x0A { end += 1 }
        guard end < limit else {
            throw FormatError(.truncated, "expected a newline-terminated \(what)", offset: start)
        }
        let line = UnsafeRawBufferPointer(rebasing: reader.buffer[start..<end])
        try Self.validateUTF8(line, offset: start, what: what)
        reader.position = end + 1
        return line
    }

    mutating func readLine(_ what: String) throws(FormatError) -> String {
        String(decoding: try readLineBytes(what), as: UTF8.self)
    }

    /// Pushes the global `module.name` if it is on the allow-list.
    mutating func global(_ module: UnsafeRawBufferPointer, _ name: UnsafeRawBufferPointer) throws(FormatError) {
        for (i, g) in globalSpellings.enumerated() where g.module.count == module.count && g.name.count == name.count {
            if g.module.elementsEqual(module) && g.name.elementsEqual(name) {
                try push(new: PickleGraph.Node(.global, a: i))
                return
            }
        }
        let m = String(decoding: module, as: UTF8.self)
        let n = String(decoding: name, as: UTF8.self)
        guard allowList.allows(module: m, name: n) else {
            throw fail(.forbiddenGlobal, "global '\(m).\(n)' is not on the allow-list")
        }
        globalSpellings.append((Array(module), Array(name)))
        graph.globals.append(PickleGraph.Global(module: m, name: n))
        try push(new: PickleGraph.Node(.global, a: graph.globals.count - 1))
    }

    // MARK: Container updates

    /// Appends `stack[m...]` to the list (or list-like object) `target`, removing them from the stack.
    mutating func appendItems(to target: Int32, from m: Int, _ opName: String) throws(FormatError) {
        try addChildren(to: target, from: m, opName, container: .list, objectItems: \.listItems, noun: "list")
    }

    /// Appends key, value pairs `stack[m...]` to the dict (or dict-like object) `target`.
    mutating func setItems(in target: Int32, from m: Int, _ opName: String) throws(FormatError) {
        try addChildren(to: target, from: m, opName, container: .dict, objectItems: \.dictItems, noun: "dict")
    }

    /// Moves `stack[m...]` into the children of `target`: a node of kind `container`, or an
    /// object (into its `objectItems`, when the container has object items).
    private mutating func addChildren(
        to target: Int32, from m: Int, _ opName: String, container: PickleGraph.Kind,
        objectItems: WritableKeyPath<PickleGraph.Object, PickleGraph.Children>?, noun: String
    ) throws(FormatError) {
        let t = Int(target)
        let added: (size: Int, height: Int32)
        switch graph.nodes[t].kind {
        case container:
            willChange(target)
            var c = graph.nodes[t].children
            added = link(&c, owner: target, from: m)
            graph.nodes[t].children = c
        case .object:
            guard let objectItems else { throw fail(.invalidValue, "\(opName) target is not a \(noun)") }
            willChange(target)
            let o = graph.nodes[t].a
            var c = graph.objects[o][keyPath: objectItems]
            added = link(&c, owner: target, from: m)
            graph.objects[o][keyPath: objectItems] = c
        default:
            throw fail(.invalidValue, "\(opName) target is not a \(noun)")
        }
        grow(target, by: added.size, height: added.height)
    }

    // MARK: Run

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    mutating func run() throws(FormatError) -> Int32 {
        while true {
            opOffset = reader.position
            let op = try reader.u8("a pickle opcode (missing STOP)")
            switch op {
            case 0x80:  // PROTO
                let p = try reader.u8("protocol number")
                guard p <= 5 else { throw fail(.unsupportedOpcode, "pickle protocol \(p) > 5") }
            case 0x95:  // FRAME
                let n = try reader.u64("frame length")
                guard n <= UInt64(reader.remaining) else {
                    throw FormatError(.truncated, "FRAME declares \(n) bytes but only \(reader.remaining) remain", offset: opOffset)
                }
            case 0x2E:  // STOP
                guard marks.isEmpty, stack.count == 1, let v = stack.last else {
                    throw fail(.invalidValue, "STOP with \(stack.count) values and \(marks.count) marks on the stack (expected exactly 1 value)")
                }
                return v
            case 0x28:  // MARK
                guard stack.count + marks.count < limits.maxStackDepth else {
                    throw fail(.limitExceeded, "pickle stack deeper than \(limits.maxStackDepth)")
                }
                marks.append(stack.count)
            case 0x30:  // POP
                if let m = marks.last, m == stack.count {
                    marks.removeLast()
                } else {
                    _ = try pop("a value to POP")
                }
            case 0x31:  // POP_MARK
                let m = try popMark()
                stack.removeLast(stack.count - m)
            case 0x32:  // DUP
                try push(shared: try top("a value to DUP"))
            case 0x4E: try push(new: PickleGraph.Node(.none))
            case 0x88: try push(new: PickleGraph.Node(.bool, a: 1))
            case 0x89: try push(new: PickleGraph.Node(.bool, a: 0))
            case 0x4A:  // BININT
                try push(new: PickleGraph.Node(.int, a: Int(Int32(bitPattern: try reader.u32("BININT operand")))))
            case 0x4B: try push(new: PickleGraph.Node(.int, a: Int(try reader.u8("BININT1 operand"))))
            case 0x4D: try push(new: PickleGraph.Node(.int, a: Int(try reader.u16("BININT2 operand"))))
            case 0x8A, 0x8B:  // LONG1, LONG4
                let raw: UInt64 = op == 0x8A ? UInt64(try reader.u8("LONG1 length")) : UInt64(try reader.u32("LONG4 length"))
                let n = try readLength(raw, "LONG")
                let start = reader.position
                let b = try reader.bytes(n, "LONG bytes")
                try push(new: Self.long(b, at: start))
            case 0x49:  // INT (text)
                let line = try readLine("INT")
                if line == "00" {
                    try push(new: PickleGraph.Node(.bool, a: 0))
                } else if line == "01" {
                    try push(new: PickleGraph.Node(.bool, a: 1))
                } else {
                    guard let v = Int64(line) else { throw fail(.invalidValue, "INT operand '\(line)' is not a 64-bit integer") }
                    try push(new: PickleGraph.Node(.int, a: Int(v)))
                }
            case 0x47:  // BINFLOAT (big-endian)
                let bits = try reader.u64("BINFLOAT operand")
                try push(new: PickleGraph.Node(.float, a: Int(bitPattern: UInt(UInt64(bigEndian: bits)))))
            case 0x8C:
                try pushString(try readLength(UInt64(try reader.u8("SHORT_BINUNICODE length")), "SHORT_BINUNICODE"))
            case 0x58:
                try pushString(try readLength(UInt64(try reader.u32("BINUNICODE length")), "BINUNICODE"))
            case 0x8D:
                try pushString(try readLength(try reader.u64("BINUNICODE8 length"), "BINUNICODE8"))
            case 0x43, 0x42, 0x8E, 0x96:  // SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8
                let raw: UInt64
                switch op {
                case 0x43: raw = UInt64(try reader.u8("SHORT_BINBYTES length"))
                case 0x42: raw = UInt64(try reader.u32("BINBYTES length"))
                default: raw = try reader.u64("BINBYTES8 length")
                }
                let n = try readLength(raw, "bytes")
                let start = reader.position
                try reader.skip(n, "bytes payload")
                try push(new: PickleGraph.Node(op == 0x96 ? .byteArray : .bytes, a: start, b: n))
            case 0x29: try push(new: PickleGraph.Node(.tuple))
            case 0x85, 0x86, 0x87:  // TUPLE1..3
                let k = Int(op - 0x84)
                guard stack.count - floor >= k else {
                    throw fail(.invalidValue, "expected a tuple element on the pickle stack, found it empty")
                }
                try pushContainer(.tuple, from: stack.count - k)
            case 0x74: try pushContainer(.tuple, from: try popMark())
            case 0x5D: try push(new: PickleGraph.Node(.list))
            case 0x6C: try pushContainer(.list, from: try popMark())
            case 0x7D: try push(new: PickleGraph.Node(.dict))
            case 0x64:  // DICT
                let m = try popMark()
                guard (stack.count - m) % 2 == 0 else { throw fail(.invalidValue, "DICT with an odd number of items") }
                try pushContainer(.dict, from: m)
            case 0x8F: try push(new: PickleGraph.Node(.set))
            case 0x91: try pushContainer(.frozenSet, from: try popMark())
            case 0x61:  // APPEND
                guard stack.count - floor >= 1 else {
                    throw fail(.invalidValue, "expected a value to APPEND on the pickle stack, found it empty")
                }
                guard stack.count - floor >= 2 else {
                    throw fail(.invalidValue, "expected a list for APPEND on the pickle stack, found it empty")
                }
                try appendItems(to: stack[stack.count - 2], from: stack.count - 1, "APPEND")
            case 0x65:  // APPENDS
                let m = try popMark()
                guard m > floor else {
                    throw fail(.invalidValue, "expected a list for APPENDS on the pickle stack, found it empty")
                }
                try appendItems(to: stack[m - 1], from: m, "APPENDS")
            case 0x90:  // ADDITEMS
                let m = try popMark()
                guard m > floor else {
                    throw fail(.invalidValue, "expected a set for ADDITEMS on the pickle stack, found it empty")
                }
                try addChildren(to: stack[m - 1], from: m, "ADDITEMS", container: .set, objectItems: nil, noun: "set")
            case 0x73:  // SETITEM
                guard stack.count - floor >= 1 else {
                    throw fail(.invalidValue, "expected a dict value on the pickle stack, found it empty")
                }
                guard stack.count - floor >= 2 else {
                    throw fail(.invalidValue, "expected a dict key on the pickle stack, found it empty")
                }
                guard stack.count - floor >= 3 else {
                    throw fail(.invalidValue, "expected a dict for SETITEM on the pickle stack, found it empty")
                }
                try setItems(in: stack[stack.count - 3], from: stack.count - 2, "SETITEM")
            case 0x75:  // SETITEMS
                let m = try popMark()
                guard (stack.count - m) % 2 == 0 else { throw fail(.invalidValue, "SETITEMS with an odd number of items") }
                guard m > floor else {
                    throw fail(.invalidValue, "expected a dict for SETITEMS on the pickle stack, found it empty")
                }
                try setItems(in: stack[m - 1], from: m, "SETITEMS")
            case 0x63:  // GLOBAL (text)
                let module = try readLineBytes("GLOBAL module")
                let name = try readLineBytes("GLOBAL name")
                try global(module, name)
            case 0x93:  // STACK_GLOBAL
                let nameNode = graph.nodes[Int(try pop("a STACK_GLOBAL name"))]
                let moduleNode = graph.nodes[Int(try pop("a STACK_GLOBAL module"))]
                guard nameNode.kind == .string, moduleNode.kind == .string else {
                    throw fail(.invalidValue, "STACK_GLOBAL expects two strings")
                }
                try global(graph.bytes(moduleNode), graph.bytes(nameNode))
            case 0x52, 0x81:  // REDUCE, NEWOBJ
                let args = try pop("an argument tuple")
                let callable = try pop("a callable")
                guard graph.nodes[Int(args)].kind == .tuple else { throw fail(.invalidValue, "REDUCE/NEWOBJ arguments are not a tuple") }
                guard graph.nodes[Int(callable)].kind == .global else {
                    throw fail(.invalidValue, "REDUCE/NEWOBJ callable is not a global reference")
                }
                graph.objects.append(PickleGraph.Object(construction: op == 0x52 ? .reduce : .newObj, callable: callable, args: args))
                var node = PickleGraph.Node(.object, a: graph.objects.count - 1)
                let c = seal(callable), a = seal(args)
                node.size = addSizes(addSizes(1, c.size), a.size)
                node.height = Swift.max(c.height, a.height) &+ 1
                try push(new: node)
            case 0x62:  // BUILD
                let state = try pop("BUILD state")
                let target = try top("an object to BUILD")
                let obj = graph.nodes[Int(target)]
                guard obj.kind == .object else { throw fail(.invalidValue, "BUILD target is not a constructed object") }
                guard graph.objects[obj.a].state < 0 else { throw fail(.invalidValue, "BUILD applied twice to one object") }
                graph.objects[obj.a].state = state
                willChange(target)
                if state == target { needsWalk = true }
                let added = seal(state)
                grow(target, by: added.size, height: added.height)
            case 0x51:  // BINPERSID
                let pid = try pop("a persistent id")
                var node = PickleGraph.Node(.persistentID, a: Int(pid))
                let p = seal(pid)
                node.size = addSizes(1, p.size)
                node.height = p.height &+ 1
                try push(new: node)
            case 0x94: try memoPut(memoCount)
            case 0x71: try memoPut(Int(try reader.u8("BINPUT index")))
            case 0x72: try memoPut(Int(try reader.u32("LONG_BINPUT index")))
            case 0x70:
                let line = try readLine("PUT index")
                guard let i = Int(line), i >= 0 else { throw fail(.invalidValue, "PUT index '\(line)' invalid") }
                try memoPut(i)
            case 0x68: try memoGet(Int(try reader.u8("BINGET index")))
            case 0x6A: try memoGet(Int(try reader.u32("LONG_BINGET index")))
            case 0x67:
                let line = try readLine("GET index")
                guard let i = Int(line), i >= 0 else { throw fail(.invalidValue, "GET index '\(line)' invalid") }
                try memoGet(i)
            default:
                throw fail(.unsupportedOpcode, "unsupported pickle opcode 0x\(String(op, radix: 16))")
            }
        }
    }

    /// A LONG1/LONG4 operand: `.int` when it fits 64 bits, else a `.bigInt` range (trimmed to the
    /// minimal two's complement, as ``PickleValue/fromTwosComplement(_:)``).
    static func long(_ b: UnsafeRawBufferPointer, at start: Int) -> PickleGraph.Node {
        var n = b.count
        if n == 0 { return PickleGraph.Node(.int, a: 0) }
        while n > 1 {
            let last = b[n - 1]
            let prevHigh = b[n - 2] & 0x80
            if (last == 0x00 && prevHigh == 0) || (last == 0xFF && prevHigh != 0) { n -= 1 } else { break }
        }
        guard n <= 8 else { return PickleGraph.Node(.bigInt, a: start, b: n) }
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(b[i]) << (8 * UInt64(i)) }
        if (b[n - 1] & 0x80) != 0 && n < 8 { v |= ~UInt64(0) << (8 * UInt64(n)) }
        return PickleGraph.Node(.int, a: Int(Int64(bitPattern: v)))
    }
}
