/// Pickle protocol used by ``PickleWriter``.
public enum PickleProtocol: Int, Sendable {
    /// Protocol 2, as `torch.save` writes `data.pkl` (BINPUT memo, text `GLOBAL`).
    case v2 = 2
    /// Protocol 4, as `pickle.dump` writes DCP `.metadata` (FRAME, MEMOIZE, STACK_GLOBAL).
    case v4 = 4
}

/// Encodes a ``PickleValue`` tree the way CPython's pickler would for the same object graph.
///
/// The tree has no object identity, so memo re-use is by value: equal strings and equal globals
/// are emitted once and referenced with `BINGET` afterwards (CPython re-uses by identity; for
/// interned strings and classes the result is the same).
public struct PickleWriter: Sendable {
    /// Protocol to write.
    public var pickleProtocol: PickleProtocol
    /// Whether equal strings are emitted once and re-used through the memo.
    public var reuseStrings: Bool

    /// Creates a writer.
    public init(protocol: PickleProtocol = .v2, reuseStrings: Bool = true) {
        self.pickleProtocol = `protocol`
        self.reuseStrings = reuseStrings
    }

    /// Encodes `value` as a complete pickle (PROTO … STOP).
    public func encode(_ value: PickleValue) -> [UInt8] {
        var e = PickleEmitter(protocol: pickleProtocol, reuseStrings: reuseStrings)
        e.begin()
        e.save(value)
        return e.finish()
    }
}

/// Opcode-level pickle emitter with memo bookkeeping and protocol-4 framing.
struct PickleEmitter {
    enum MemoKey: Hashable {
        case string(String)
        case global(String, String)
        /// A caller-chosen identity (objects shared by reference in the Python graph).
        case token(String)
    }

    let proto: PickleProtocol
    let reuseStrings: Bool
    var out = ByteWriter(capacity: 1024)
    var memoCount = 0
    var memo: [MemoKey: Int] = [:]
    var frameStart = -1
    static let frameTarget = 64 * 1024

    init(protocol: PickleProtocol, reuseStrings: Bool) {
        self.proto = `protocol`
        self.reuseStrings = reuseStrings
    }

    mutating func begin() {
        out.u8(0x80)
        out.u8(UInt8(proto.rawValue))
        if proto == .v4 { startFrame() }
    }

    mutating func startFrame() {
        frameStart = out.count
        out.repeatByte(0, count: 9)
    }

    mutating func commitFrame() {
        guard frameStart >= 0 else { return }
        let len = out.count - frameStart - 9
        if len >= 4 {
            out.bytes[frameStart] = 0x95
            var l = UInt64(len).littleEndian
            withUnsafeBytes(of: &l) { raw in
                for i in 0..<8 { out.bytes[frameStart + 1 + i] = raw[i] }
            }
        } else {
            out.bytes.removeSubrange(frameStart..<(frameStart + 9))
        }
        frameStart = -1
    }

    /// CPython's `_Pickler_OpcodeBoundary`, called at the start of every `save()`: commits the
    /// current frame once it holds at least 64 KiB.
    mutating func boundary() {
        guard proto == .v4, frameStart >= 0 else { return }
        if out.count - frameStart - 9 >= PickleEmitter.frameTarget {
            commitFrame()
            startFrame()
        }
    }

    mutating func finish() -> [UInt8] {
        out.u8(0x2E)
        if proto == .v4 { commitFrame() }
        return out.bytes
    }

    // MARK: memo

    mutating func memoize(_ key: MemoKey? = nil) {
        if proto == .v4 {
            out.u8(0x94)
        } else if memoCount < 256 {
            out.u8(0x71)
            out.u8(UInt8(memoCount))
        } else {
            out.u8(0x72)
            out.u32(UInt32(truncatingIfNeeded: memoCount))
        }
        if let key { memo[key] = memoCount }
        memoCount += 1
    }

    /// Emits a memo reference for `key` if known; returns whether it did.
    mutating func get(_ key: MemoKey) -> Bool {
        guard let i = memo[key] else { return false }
        emitGet(i)
        return true
    }

    mutating func emitGet(_ i: Int) {
        if i < 256 {
            out.u8(0x68)
            out.u8(UInt8(i))
        } else {
            out.u8(0x6A)
            out.u32(UInt32(truncatingIfNeeded: i))
        }
    }

    /// Memo indices cached per caller-chosen slot (`-1`: not yet), in front of ``memo``.
    var slots: [Int] = []

    mutating func remember(_ slot: Int, _ index: Int?) {
        guard let index, slot >= 0 else { return }
        if slot >= slots.count { slots.append(contentsOf: repeatElement(-1, count: slot + 1 - slots.count)) }
        slots[slot] = index
    }

    /// `string(s)` for a string the caller also names by `slot`: once `s` is in the memo, repeats
    /// take its index from the slot instead of hashing `s` (same bytes: a memo index never
    /// changes once assigned).
    mutating func cachedString(_ slot: Int, _ s: String) {
        if reuseStrings, slot < slots.count, slots[slot] >= 0 {
            boundary()
            emitGet(slots[slot])
            return
        }
        string(s)
        if reuseStrings { remember(slot, memo[.string(s)]) }
    }

    /// `global(module, name, moduleIdentity:)` with its memo index cached in `slot`.
    mutating func cachedGlobal(_ slot: Int, _ module: String, _ name: String, moduleIdentity: MemoKey? = nil) {
        if slot < slots.count, slots[slot] >= 0 {
            boundary()
            emitGet(slots[slot])
            return
        }
        global(module, name, moduleIdentity: moduleIdentity)
        remember(slot, memo[.global(module, name)])
    }

    /// A string object of its own (never shared through the memo, though memoized as CPython
    /// memoizes every string it saves).
    mutating func freshString(_ s: String) {
        boundary()
        emitString(s)
        memoize()
    }

    // MARK: scalars

    mutating func none() {
        boundary()
        out.u8(0x4E)
    }

    mutating func bool(_ b: Bool) {
        boundary()
        out.u8(b ? 0x88 : 0x89)
    }

    mutating func int(_ v: Int64) {
        boundary()
        if v >= 0 && v <= 0xFF {
            out.u8(0x4B)
            out.u8(UInt8(v))
        } else if v >= 0 && v <= 0xFFFF {
            out.u8(0x4D)
            out.u16(UInt16(v))
        } else if v >= Int64(Int32.min) && v <= Int64(Int32.max) {
            out.u8(0x4A)
            out.u32(UInt32(bitPattern: Int32(v)))
        } else {
            long(PickleValue.twosComplementBytes(v))
        }
    }

    mutating func long(_ bytes: [UInt8]) {
        if bytes.count < 256 {
            out.u8(0x8A)
            out.u8(UInt8(bytes.count))
        } else {
            out.u8(0x8B)
            out.u32(UInt32(truncatingIfNeeded: bytes.count))
        }
        out.append(bytes)
    }

    mutating func float(_ v: Double) {
        boundary()
        out.u8(0x47)
        var b = v.bitPattern.bigEndian
        withUnsafeBytes(of: &b) { out.append($0) }
    }

    /// Emits a string; with `key` (or by value when `reuseStrings`) a repeated string is a memo get.
    mutating func string(_ s: String, identity: MemoKey? = nil) {
        boundary()
        let key: MemoKey? = identity ?? (reuseStrings ? .string(s) : nil)
        if let key, get(key) { return }
        emitString(s)
        memoize(key)
    }

    /// SHORT_BINUNICODE / BINUNICODE / BINUNICODE8 and the UTF-8 bytes.
    mutating func emitString(_ s: String) {
        let count = s.utf8.count
        if proto == .v4 && count < 256 {
            out.u8(0x8C)
            out.u8(UInt8(count))
        } else if count <= Int(UInt32.max) {
            out.u8(0x58)
            out.u32(UInt32(count))
        } else {
            out.u8(0x8D)
            out.u64(UInt64(count))
        }
        out.append(s.utf8)
    }

    mutating func global(_ module: String, _ name: String, moduleIdentity: MemoKey? = nil) {
        boundary()
        let key = MemoKey.global(module, name)
        if get(key) { return }
        if proto == .v4 {
            string(module, identity: moduleIdentity)
            string(name)
            out.u8(0x93)
        } else {
            out.u8(0x63)
            out.append(module)
            out.u8(0x0A)
            out.append(name)
            out.u8(0x0A)
        }
        memoize(key)
    }

    mutating func mark() { out.u8(0x28) }

    /// Emits a tuple from already-known element emitters.
    mutating func tuple(count: Int, _ body: (inout PickleEmitter) -> Void) {
        boundary()
        if count == 0 {
            out.u8(0x29)
            return
        }
        if count <= 3 {
            body(&self)
            out.u8(0x84 + UInt8(count))
        } else {
            mark()
            body(&self)
            out.u8(0x74)
        }
        memoize()
    }

    // MARK: generic value

    mutating func save(_ v: PickleValue) {
        switch v {
        case .none: none()
        case .bool(let b): bool(b)
        case .int(let i): int(i)
        case .bigInt(let b):
            boundary()
            long(b)
        case .float(let d): float(d)
        case .string(let s): string(s)
        case .bytes(let b):
            boundary()
            bytes(b)
        case .byteArray(let b):
            boundary()
            global(proto == .v2 ? "__builtin__" : "builtins", "bytearray")
            tuple(count: 1) { $0.bytes(b) }
            out.u8(0x52)
            memoize()
        case .tuple(let items):
            tuple(count: items.count) { e in for x in items { e.save(x) } }
        case .list(let items):
            boundary()
            out.u8(0x5D)
            memoize()
            batch(items.count, single: 0x61, many: 0x65) { e, i in e.save(items[i]) }
        case .dict(let entries):
            boundary()
            out.u8(0x7D)
            memoize()
            batch(entries.count, single: 0x73, many: 0x75) { e, i in
                e.save(entries[i].key)
                e.save(entries[i].value)
            }
        case .set(let items), .frozenSet(let items):
            boundary()
            let frozen: Bool
            if case .frozenSet = v { frozen = true } else { frozen = false }
            if proto == .v4 {
                if frozen {
                    mark()
                    for x in items { save(x) }
                    out.u8(0x91)
                    memoize()
                } else {
                    out.u8(0x8F)
                    memoize()
                    var i = 0
                    while i < items.count {
                        let end = Swift.min(items.count, i + 1000)
                        mark()
                        for x in items[i..<end] { save(x) }
                        out.u8(0x90)
                        i = end
                    }
                }
            } else {
                global("__builtin__", frozen ? "frozenset" : "set")
                tuple(count: 1) { e in e.save(.list(items)) }
                out.u8(0x52)
                memoize()
            }
        case .global(let m, let n): global(m, n)
        case .object(let o):
            boundary()
            save(o.callable)
            save(o.args)
            out.u8(o.construction == .reduce ? 0x52 : 0x81)
            memoize()
            let list = o.listItems, dict = o.dictItems
            batch(list.count, single: 0x61, many: 0x65) { e, i in e.save(list[i]) }
            batch(dict.count, single: 0x73, many: 0x75) { e, i in
                e.save(dict[i].key)
                e.save(dict[i].value)
            }
            if let s = o.state {
                save(s)
                out.u8(0x62)
            }
        case .persistentID(let pid):
            // CPython checks persistent ids inside save(), after the boundary.
            boundary()
            save(pid)
            out.u8(0x51)
        }
    }

    mutating func bytes(_ b: [UInt8]) {
        if proto == .v4 {
            if b.count < 256 {
                out.u8(0x43)
                out.u8(UInt8(b.count))
            } else if b.count <= Int(UInt32.max) {
                out.u8(0x42)
                out.u32(UInt32(b.count))
            } else {
                out.u8(0x8E)
                out.u64(UInt64(b.count))
            }
            out.append(b)
            memoize()
        } else {
            // CPython protocol < 3: _codecs.encode(latin1 text, 'latin1').
            global("_codecs", "encode")
            let latin1 = String(String.UnicodeScalarView(b.map { Unicode.Scalar($0) }))
            tuple(count: 2) { e in
                e.string(latin1)
                e.string("latin1")
            }
            out.u8(0x52)
            memoize()
        }
    }

    /// CPython's batched APPENDS/SETITEMS: batches of 1000, a lone item uses the single opcode.
    mutating func batch(_ n: Int, single: UInt8, many: UInt8, _ item: (inout PickleEmitter, Int) -> Void) {
        var i = 0
        while i < n {
            let end = Swift.min(n, i + 1000)
            if end - i == 1 {
                item(&self, i)
                out.u8(single)
            } else {
                mark()
                for j in i..<end { item(&self, j) }
                out.u8(many)
            }
            i = end
        }
    }
}
