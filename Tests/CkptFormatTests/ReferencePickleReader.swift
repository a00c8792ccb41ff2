@testable import CkptFormat

// The class-based pickle machine that `PickleReader` used before the flat graph
// (`PickleGraph`), kept verbatim as the reference of differential tests: on any input the new
// reader must give the same value or the same error code and offset.

/// Reference decode: machine, expanded-size walk, memo-bomb ratio, materialize (the old
/// `PickleReader.decode`).
func referenceDecode(_ bytes: UnsafeRawBufferPointer, limits: PickleLimits = .default, allowList: PickleAllowList = .checkpoint)
    throws(FormatError) -> PickleReader.Decoded
{
    var machine = ReferencePickleMachine(buffer: bytes, limits: limits, allowList: allowList)
    defer { machine.dismantle() }
    let root = try machine.run()
    var sizes: [ObjectIdentifier: Int] = [:]
    let expanded = try ReferencePickleMachine.expandedSize(root, depth: 0, sizes: &sizes, limits: limits, offset: machine.reader.position)
    guard expanded <= max(1 << 20, 64 * machine.nodeCount) else {
        throw FormatError(
            .limitExceeded,
            "pickle of \(machine.nodeCount) objects expands to \(expanded) through shared references (refused as a memo bomb)",
            offset: machine.reader.position)
    }
    var budget = limits.maxItems
    let value = try ReferencePickleMachine.materialize(root, depth: 0, budget: &budget, limits: limits, offset: machine.reader.position)
    return PickleReader.Decoded(value: value, endOffset: machine.reader.position)
}

/// Mutable node used while the stack machine runs; lists/dicts/sets are shared by reference through
/// the memo exactly like Python objects, then frozen into a `PickleValue` tree.
final class ReferencePickleNode {
    enum Kind {
        case leaf(PickleValue)
        case tuple
        case list
        case dict
        case set
        case frozenSet
        case object(PickleObject.Construction)
        case persistentID
    }
    var kind: Kind
    /// Elements; dict: alternating key, value; object: [callable, args]; persistentID: [pid].
    var items: [ReferencePickleNode]
    var state: ReferencePickleNode?
    /// For `.object`: items added with APPEND(S) / SETITEM(S) (flattened key, value pairs).
    var listItems: [ReferencePickleNode] = []
    var dictItems: [ReferencePickleNode] = []

    init(_ kind: Kind, _ items: [ReferencePickleNode] = []) {
        self.kind = kind
        self.items = items
    }
}

struct ReferencePickleMachine {
    var reader: ByteReader
    let limits: PickleLimits
    let allowList: PickleAllowList
    var stack: [ReferencePickleNode] = []
    var marks: [Int] = []
    /// Memo: dense indices (MEMOIZE, sequential BINPUT) in an array, sparse ones in a dictionary.
    var memoDense: [ReferencePickleNode?] = []
    var memoSparse: [Int: ReferencePickleNode] = [:]
    var memoCount = 0
    var nodeCount = 0
    var opOffset = 0

    init(buffer: UnsafeRawBufferPointer, limits: PickleLimits, allowList: PickleAllowList) {
        self.reader = ByteReader(buffer)
        self.limits = limits
        self.allowList = allowList
    }

    func fail(_ code: FormatError.Code, _ message: String) -> FormatError {
        FormatError(code, message, offset: opOffset)
    }

    /// Every node ever pushed, so ``dismantle()`` can unlink them iteratively.
    var allNodes: [ReferencePickleNode] = []

    mutating func dismantle() {
        for n in allNodes {
            n.items = []
            n.listItems = []
            n.dictItems = []
            n.state = nil
        }
        allNodes = []
        stack = []
        memoDense = []
        memoSparse = [:]
    }

    mutating func push(_ node: ReferencePickleNode) throws(FormatError) {
        allNodes.append(node)
        guard stack.count + marks.count < limits.maxStackDepth else {
            throw fail(.limitExceeded, "pickle stack deeper than \(limits.maxStackDepth)")
        }
        nodeCount += 1
        guard nodeCount <= limits.maxItems else {
            throw fail(.limitExceeded, "pickle has more than \(limits.maxItems) items")
        }
        stack.append(node)
    }

    mutating func pushLeaf(_ v: PickleValue) throws(FormatError) { try push(ReferencePickleNode(.leaf(v))) }

    mutating func pop(_ what: String) throws(FormatError) -> ReferencePickleNode {
        let floor = marks.last ?? 0
        guard stack.count > floor, let n = stack.popLast() else {
            throw fail(.invalidValue, "expected \(what) on the pickle stack, found it empty")
        }
        return n
    }

    mutating func top(_ what: String) throws(FormatError) -> ReferencePickleNode {
        let floor = marks.last ?? 0
        guard stack.count > floor, let n = stack.last else {
            throw fail(.invalidValue, "expected \(what) on the pickle stack, found it empty")
        }
        return n
    }

    mutating func popMark() throws(FormatError) -> [ReferencePickleNode] {
        guard let m = marks.popLast() else {
            throw fail(.invalidValue, "expected a MARK on the stack")
        }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    mutating func memoPut(_ index: Int) throws(FormatError) {
        let node = try top("a value to memoize")
        let exists = index < memoDense.count ? memoDense[index] != nil : memoSparse[index] != nil
        if !exists {
            guard memoCount < limits.maxMemoEntries else {
                throw fail(.limitExceeded, "pickle memo larger than \(limits.maxMemoEntries) entries")
            }
            memoCount += 1
        }
        if index < memoDense.count {
            memoDense[index] = node
        } else if index == memoDense.count {
            memoDense.append(node)
        } else {
            memoSparse[index] = node
        }
    }

    mutating func memoGet(_ index: Int) throws(FormatError) {
        let found = index < memoDense.count ? memoDense[index] : memoSparse[index]
        guard let node = found else {
            throw fail(.invalidValue, "memo key \(index) was never stored")
        }
        try push(node)
    }

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

    mutating func readString(_ n: Int) throws(FormatError) -> String {
        let start = reader.position
        let raw = try reader.bytes(n, "string bytes")
        return try decodeUTF8(raw, offset: start, what: "pickle string")
    }

    mutating func readLine(_ what: String) throws(FormatError) -> String {
        let start = reader.position
        var end = start
        let limit = Swift.min(reader.buffer.count, start + 4096)
        while end < limit && reader.buffer[end] != 0x0A { end += 1 }
        guard end < limit else {
            throw FormatError(.truncated, "expected a newline-terminated \(what)", offset: start)
        }
        let s = try decodeUTF8(UnsafeRawBufferPointer(rebasing: reader.buffer[start..<end]), offset: start, what: what)
        reader.position = end + 1
        return s
    }

    mutating func global(_ module: String, _ name: String) throws(FormatError) {
        guard allowList.allows(module: module, name: name) else {
            throw fail(.forbiddenGlobal, "global '\(module).\(name)' is not on the allow-list")
        }
        try pushLeaf(.global(module: module, name: name))
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    mutating func run() throws(FormatError) -> ReferencePickleNode {
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
                _ = try popMark()
            case 0x32:  // DUP
                try push(try top("a value to DUP"))
            case 0x4E: try pushLeaf(.none)
            case 0x88: try pushLeaf(.bool(true))
            case 0x89: try pushLeaf(.bool(false))
            case 0x4A:  // BININT
                try pushLeaf(.int(Int64(Int32(bitPattern: try reader.u32("BININT operand")))))
            case 0x4B: try pushLeaf(.int(Int64(try reader.u8("BININT1 operand"))))
            case 0x4D: try pushLeaf(.int(Int64(try reader.u16("BININT2 operand"))))
            case 0x8A, 0x8B:  // LONG1, LONG4
                let raw: UInt64 = op == 0x8A ? UInt64(try reader.u8("LONG1 length")) : UInt64(try reader.u32("LONG4 length"))
                let n = try readLength(raw, "LONG")
                let b = try reader.bytes(n, "LONG bytes")
                try pushLeaf(PickleValue.fromTwosComplement(Array(b)))
            case 0x49:  // INT (text)
                let line = try readLine("INT")
                if line == "00" { try pushLeaf(.bool(false)) } else if line == "01" { try pushLeaf(.bool(true)) } else {
                    guard let v = Int64(line) else { throw fail(.invalidValue, "INT operand '\(line)' is not a 64-bit integer") }
                    try pushLeaf(.int(v))
                }
            case 0x47:  // BINFLOAT (big-endian)
                let bits = try reader.u64("BINFLOAT operand")
                try pushLeaf(.float(Double(bitPattern: UInt64(bigEndian: bits))))
            case 0x8C:
                let n = try readLength(UInt64(try reader.u8("SHORT_BINUNICODE length")), "SHORT_BINUNICODE")
                try pushLeaf(.string(try readString(n)))
            case 0x58:
                let n = try readLength(UInt64(try reader.u32("BINUNICODE length")), "BINUNICODE")
                try pushLeaf(.string(try readString(n)))
            case 0x8D:
                let n = try readLength(try reader.u64("BINUNICODE8 length"), "BINUNICODE8")
                try pushLeaf(.string(try readString(n)))
            case 0x43, 0x42, 0x8E, 0x96:  // SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8
                let raw: UInt64
                switch op {
                case 0x43: raw = UInt64(try reader.u8("SHORT_BINBYTES length"))
                case 0x42: raw = UInt64(try reader.u32("BINBYTES length"))
                default: raw = try reader.u64("BINBYTES8 length")
                }
                let n = try readLength(raw, "bytes")
                let b = Array(try reader.bytes(n, "bytes payload"))
                try pushLeaf(op == 0x96 ? .byteArray(b) : .bytes(b))
            case 0x29: try push(ReferencePickleNode(.tuple))
            case 0x85, 0x86, 0x87:  // TUPLE1..3
                let k = Int(op - 0x84)
                var items: [ReferencePickleNode] = []
                for _ in 0..<k { items.append(try pop("a tuple element")) }
                try push(ReferencePickleNode(.tuple, items.reversed()))
            case 0x74: try push(ReferencePickleNode(.tuple, try popMark()))
            case 0x5D: try push(ReferencePickleNode(.list))
            case 0x6C: try push(ReferencePickleNode(.list, try popMark()))
            case 0x7D: try push(ReferencePickleNode(.dict))
            case 0x64:  // DICT
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail(.invalidValue, "DICT with an odd number of items") }
                try push(ReferencePickleNode(.dict, items))
            case 0x8F: try push(ReferencePickleNode(.set))
            case 0x91: try push(ReferencePickleNode(.frozenSet, try popMark()))
            case 0x61:  // APPEND
                let v = try pop("a value to APPEND")
                let list = try top("a list for APPEND")
                switch list.kind {
                case .list: list.items.append(v)
                case .object: list.listItems.append(v)
                default: throw fail(.invalidValue, "APPEND target is not a list")
                }
            case 0x65:  // APPENDS
                let items = try popMark()
                let list = try top("a list for APPENDS")
                switch list.kind {
                case .list: list.items.append(contentsOf: items)
                case .object: list.listItems.append(contentsOf: items)
                default: throw fail(.invalidValue, "APPENDS target is not a list")
                }
            case 0x90:  // ADDITEMS
                let items = try popMark()
                let set = try top("a set for ADDITEMS")
                guard case .set = set.kind else { throw fail(.invalidValue, "ADDITEMS target is not a set") }
                set.items.append(contentsOf: items)
            case 0x73:  // SETITEM
                let v = try pop("a dict value")
                let k = try pop("a dict key")
                let d = try top("a dict for SETITEM")
                switch d.kind {
                case .dict: d.items.append(contentsOf: [k, v])
                case .object: d.dictItems.append(contentsOf: [k, v])
                default: throw fail(.invalidValue, "SETITEM target is not a dict")
                }
            case 0x75:  // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail(.invalidValue, "SETITEMS with an odd number of items") }
                let d = try top("a dict for SETITEMS")
                switch d.kind {
                case .dict: d.items.append(contentsOf: items)
                case .object: d.dictItems.append(contentsOf: items)
                default: throw fail(.invalidValue, "SETITEMS target is not a dict")
                }
            case 0x63:  // GLOBAL (text)
                let module = try readLine("GLOBAL module")
                let name = try readLine("GLOBAL name")
                try global(module, name)
            case 0x93:  // STACK_GLOBAL
                let nameNode = try pop("a STACK_GLOBAL name")
                let moduleNode = try pop("a STACK_GLOBAL module")
                guard case .leaf(.string(let name)) = nameNode.kind, case .leaf(.string(let module)) = moduleNode.kind else {
                    throw fail(.invalidValue, "STACK_GLOBAL expects two strings")
                }
                try global(module, name)
            case 0x52, 0x81:  // REDUCE, NEWOBJ
                let args = try pop("an argument tuple")
                let callable = try pop("a callable")
                guard case .tuple = args.kind else { throw fail(.invalidValue, "REDUCE/NEWOBJ arguments are not a tuple") }
                guard case .leaf(.global) = callable.kind else {
                    throw fail(.invalidValue, "REDUCE/NEWOBJ callable is not a global reference")
                }
                try push(ReferencePickleNode(.object(op == 0x52 ? .reduce : .newObj), [callable, args]))
            case 0x62:  // BUILD
                let state = try pop("BUILD state")
                let obj = try top("an object to BUILD")
                guard case .object = obj.kind else { throw fail(.invalidValue, "BUILD target is not a constructed object") }
                guard obj.state == nil else { throw fail(.invalidValue, "BUILD applied twice to one object") }
                obj.state = state
            case 0x51:  // BINPERSID
                let pid = try pop("a persistent id")
                try push(ReferencePickleNode(.persistentID, [pid]))
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

    /// Number of nodes `node` expands to once shared references are copied, computed once per node;
    /// throws as soon as it passes `maxItems` or the nesting passes `maxDepth` (cycles included).
    static func expandedSize(
        _ node: ReferencePickleNode, depth: Int, sizes: inout [ObjectIdentifier: Int], limits: PickleLimits, offset: Int
    ) throws(FormatError) -> Int {
        if let known = sizes[ObjectIdentifier(node)] { return known }
        guard depth < limits.maxDepth else {
            throw FormatError(.limitExceeded, "pickle value nesting deeper than \(limits.maxDepth) (or cyclic)", offset: offset)
        }
        var total = 1
        for list in [node.items, node.listItems, node.dictItems] {
            for child in list {
                total += try expandedSize(child, depth: depth + 1, sizes: &sizes, limits: limits, offset: offset)
                guard total <= limits.maxItems else {
                    throw FormatError(
                        .limitExceeded, "pickle value expands to more than \(limits.maxItems) items (shared references)", offset: offset)
                }
            }
        }
        if let state = node.state {
            total += try expandedSize(state, depth: depth + 1, sizes: &sizes, limits: limits, offset: offset)
            guard total <= limits.maxItems else {
                throw FormatError(
                    .limitExceeded, "pickle value expands to more than \(limits.maxItems) items (shared references)", offset: offset)
            }
        }
        sizes[ObjectIdentifier(node)] = total
        return total
    }

    static func materialize(_ node: ReferencePickleNode, depth: Int, budget: inout Int, limits: PickleLimits, offset: Int) throws(FormatError) -> PickleValue {
        guard depth < limits.maxDepth else {
            throw FormatError(.limitExceeded, "pickle value nesting deeper than \(limits.maxDepth) (or cyclic)", offset: offset)
        }
        budget -= 1
        guard budget >= 0 else {
            throw FormatError(.limitExceeded, "pickle value expands to more than \(limits.maxItems) items (shared references)", offset: offset)
        }
        func children(_ nodes: [ReferencePickleNode]? = nil) throws(FormatError) -> [PickleValue] {
            let source = nodes ?? node.items
            var out: [PickleValue] = []
            out.reserveCapacity(source.count)
            for c in source {
                out.append(try materialize(c, depth: depth + 1, budget: &budget, limits: limits, offset: offset))
            }
            return out
        }
        switch node.kind {
        case .leaf(let v): return v
        case .tuple: return .tuple(try children())
        case .list: return .list(try children())
        case .set: return .set(try children())
        case .frozenSet: return .frozenSet(try children())
        case .dict:
            return .dict(pairs(try children()))
        case .object(let construction):
            let parts = try children()
            var state: PickleValue?
            if let s = node.state {
                state = try materialize(s, depth: depth + 1, budget: &budget, limits: limits, offset: offset)
            }
            return .object(
                PickleObject(
                    construction: construction, callable: parts[0], args: parts[1], state: state,
                    listItems: try children(node.listItems), dictItems: pairs(try children(node.dictItems))))
        case .persistentID:
            return .persistentID(try children()[0])
        }
    }
}
