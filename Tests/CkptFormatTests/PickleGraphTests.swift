import CkptTestSupport
import Foundation
import Testing
@testable import CkptFormat

/// The flat-graph pickle reader against the class-based reference (`referenceDecode`), and the
/// graph `.metadata` decoder against the tree decoder, on random, mutated and hostile inputs.
/// Failures print the seed and case.
@Suite struct PickleGraphTests {
    static let seeds: [UInt64] = [11, 12, 13, 0xFEED, 0xBADC0DE, 77]

    // MARK: Comparison helpers

    /// Structural equality with floats compared by bit pattern (NaN == NaN).
    static func same(_ a: PickleValue, _ b: PickleValue) -> Bool {
        switch (a, b) {
        case (.float(let x), .float(let y)): return x.bitPattern == y.bitPattern
        case (.tuple(let x), .tuple(let y)), (.list(let x), .list(let y)), (.set(let x), .set(let y)),
            (.frozenSet(let x), .frozenSet(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.dict(let x), .dict(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { same($0.key, $1.key) && same($0.value, $1.value) }
        case (.object(let x), .object(let y)):
            guard x.construction == y.construction, same(x.callable, y.callable), same(x.args, y.args) else { return false }
            switch (x.state, y.state) {
            case (nil, nil): break
            case (let s?, let t?): if !same(s, t) { return false }
            default: return false
            }
            return x.listItems.count == y.listItems.count && zip(x.listItems, y.listItems).allSatisfy { same($0, $1) }
                && x.dictItems.count == y.dictItems.count
                && zip(x.dictItems, y.dictItems).allSatisfy { same($0.key, $1.key) && same($0.value, $1.value) }
        case (.persistentID(let x), .persistentID(let y)): return same(x, y)
        default: return a == b
        }
    }

    static func decodeBoth(_ bytes: [UInt8], _ limits: PickleLimits) -> (
        new: Result<PickleReader.Decoded, FormatError>, reference: Result<PickleReader.Decoded, FormatError>
    ) {
        bytes.withUnsafeBytes { raw in
            let new = Result { () throws(FormatError) in try PickleReader(limits: limits).decode(raw) }
            let reference = Result { () throws(FormatError) in try referenceDecode(raw, limits: limits) }
            return (new, reference)
        }
    }

    /// Both decoders give the same value and end offset, or errors with the same code and offset.
    static func expectAgreement(_ bytes: [UInt8], _ limits: PickleLimits, _ context: String) {
        let (new, reference) = decodeBoth(bytes, limits)
        switch (new, reference) {
        case (.success(let a), .success(let b)):
            #expect(same(a.value, b.value) && a.endOffset == b.endOffset, "\(context): values differ")
        case (.failure(let a), .failure(let b)):
            #expect(a.code == b.code && a.offset == b.offset, "\(context): \(a) vs reference \(b)")
        case (.success(let a), .failure(let b)):
            Issue.record("\(context): decoded to \(a.value), reference refused: \(b)")
        case (.failure(let a), .success):
            Issue.record("\(context): refused (\(a)), reference decoded it")
        }
    }

    static let limitVariants: [PickleLimits] = [
        .default,
        PickleLimits(maxDepth: 5, maxItems: 60, maxStringLength: 6, maxMemoEntries: 4, maxStackDepth: 10),
        PickleLimits(maxDepth: 3, maxItems: 1_000, maxMemoEntries: 2, maxStackDepth: 40),
    ]

    // MARK: Random opcode programs

    /// What a simulated stack slot holds.
    enum Slot: Equatable {
        case mark, scalar, string, global, tuple, list, dict, set, object
    }

    /// A random program that tracks an abstract stack and memo, so that most programs are valid
    /// (and 1 op in `noise` is random): memo PUT/GET and DUP sharing, containers grown after they
    /// were shared, cycles, objects with BUILD / APPEND / SETITEM, persistent ids, all opcodes
    /// with their operand forms.
    static func program(_ r: inout SplitMix64, noise: UInt64 = 12) -> [UInt8] {
        var b: [UInt8] = [0x80, r.chance(0.5) ? 4 : 2, 0x28]
        var stack: [Slot] = [.mark]
        var memo: [Int: Slot] = [:]
        var nextMemo = 0
        func str(_ s: String) -> [UInt8] { [0x8C, UInt8(s.utf8.count)] + Array(s.utf8) }
        func region() -> ArraySlice<Slot> { stack[((stack.lastIndex(of: .mark) ?? -1) + 1)...] }
        // The bottom mark (index 0) is only closed at the end, by the wrapping TUPLE.
        func innerMark() -> Int? { stack.lastIndex(of: .mark).flatMap { $0 > 0 ? $0 : nil } }
        func closeToMark(_ op: UInt8, _ kind: Slot, final: Bool = false) {
            guard let m = final ? stack.lastIndex(of: .mark) : innerMark() else { return }
            stack.removeSubrange(m...)
            stack.append(kind)
            b.append(op)
        }
        for _ in 0..<r.int(1...60) {
            if r.next() % noise == 0 {
                // Any opcode, valid here or not.
                b.append(r.pick([0x30, 0x31, 0x32, 0x61, 0x65, 0x73, 0x75, 0x90, 0x52, 0x81, 0x62, 0x51, 0x74, 0x64, 0x86, 0x87, 0x93]))
                continue
            }
            let top = region()
            let below = stack.count >= 2 ? stack[stack.count - 2] : .mark
            let markBase = stack.lastIndex(of: .mark).map { $0 > 0 ? stack[$0 - 1] : .mark } ?? .mark
            switch r.next() % 31 {
            case 0:
                b += r.pick([[0x4E], [0x88], [0x89], [0x4B, 7], [0x4D, 1, 2], [0x4A, 0xFF, 0xFF, 0xFF, 0xFF], [0x47, 0x7F, 0xF8, 0, 0, 0, 0, 0, 1]])
                stack.append(.scalar)
            case 1:
                let n = r.int(0...12)
                b += [0x8A, UInt8(n)] + r.bytes(n)
                stack.append(.scalar)
            case 2:
                b += r.pick([str("offsets"), str("é"), str(""), [0x58, 3, 0, 0, 0, 0x61, 0x62, 0x63], [0x43, 2, 1, 2], [0x96, 1, 0, 0, 0, 0, 0, 0, 0, 9]])
                stack.append(b.last == 9 || b[b.count - 2] == 2 ? .scalar : .string)
            case 3:
                b += [0x49] + Array(r.pick(["01\n", "-12\n", "00\n"]).utf8)
                stack.append(.scalar)
            case 4: b.append(0x29); stack.append(.tuple)
            case 5: b.append(0x5D); stack.append(.list)
            case 6: b.append(0x7D); stack.append(.dict)
            case 7: b.append(0x8F); stack.append(.set)
            case 8, 9: b.append(0x28); stack.append(.mark)
            case 10:
                if top.count >= 1 {
                    let k = r.int(1...min(3, top.count))
                    b.append(0x84 + UInt8(k))
                    stack.removeLast(k)
                    stack.append(.tuple)
                }
            case 11: closeToMark(r.pick([0x74, 0x6C, 0x91]), .tuple)  // kind fixed below
            case 12:
                if top.count % 2 == 0 { closeToMark(0x64, .dict) }
            case 13:
                if top.count >= 2, below == .list || below == .object {
                    b.append(0x61)
                    stack.removeLast()
                }
            case 14:
                if markBase == .list || markBase == .object, innerMark() != nil {
                    b.append(0x65)
                    stack.removeSubrange(stack.lastIndex(of: .mark)!...)
                }
            case 15:
                if top.count >= 3, stack[stack.count - 3] == .dict || stack[stack.count - 3] == .object {
                    b.append(0x73)
                    stack.removeLast(2)
                }
            case 16:
                if markBase == .dict || markBase == .object, top.count % 2 == 0, innerMark() != nil {
                    b.append(0x75)
                    stack.removeSubrange(stack.lastIndex(of: .mark)!...)
                }
            case 17:
                if markBase == .set, innerMark() != nil {
                    b.append(0x90)
                    stack.removeSubrange(stack.lastIndex(of: .mark)!...)
                }
            case 18, 19:
                if let t = top.last {
                    switch r.next() % 4 {
                    case 0: b += [0x71, UInt8(nextMemo)]
                    case 1: b += [0x72] + withUnsafeBytes(of: UInt32(nextMemo).littleEndian, Array.init)
                    case 2: b += [0x70] + Array("\(nextMemo)\n".utf8)
                    default: b.append(0x94)
                    }
                    memo[nextMemo] = t
                    nextMemo += 1
                }
            case 20, 21, 22:
                if let (i, kind) = memo.randomElement(using: &r) {
                    switch r.next() % 3 {
                    case 0: b += [0x68, UInt8(i)]
                    case 1: b += [0x6A] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init)
                    default: b += [0x67] + Array("\(i)\n".utf8)
                    }
                    stack.append(kind)
                }
            case 23:
                if let t = top.last {
                    b.append(0x32)
                    stack.append(t)
                }
            case 24:
                if !top.isEmpty {
                    b.append(0x30)
                    stack.removeLast()
                }
            case 25:
                let (m, n) = r.pick([("torch", "Size"), ("collections", "OrderedDict"), ("torch", "float32"), ("pathlib", "PosixPath")])
                b += r.chance(0.5) ? str(m) + str(n) + [0x93] : [0x63] + Array("\(m)\n\(n)\n".utf8)
                stack.append(.global)
            case 26:
                if top.count >= 2, below == .global, stack.last == .tuple {
                    b.append(r.pick([0x52, 0x81]))
                    stack.removeLast(2)
                    stack.append(.object)
                }
            case 27:
                if top.count >= 2, below == .object {
                    b.append(0x62)
                    stack.removeLast()
                }
            case 28:
                if !top.isEmpty {
                    b.append(0x51)
                    stack.removeLast()
                    stack.append(.scalar)
                }
            case 29:
                // Grow a memoized container, maybe after it became a child (or of itself).
                if let (i, kind) = memo.filter({ [.list, .dict, .object].contains($0.value) }).randomElement(using: &r) {
                    b += [0x68, UInt8(i)]
                    b += kind == .list ? [0x4E, 0x61] : (r.chance(0.3) ? [0x4E, 0x68, UInt8(i), 0x73] : [0x4E, 0x4E, 0x73])
                    b.append(0x30)
                }
            default:
                if innerMark() != nil {
                    b.append(0x31)
                    stack.removeSubrange(stack.lastIndex(of: .mark)!...)
                }
            }
        }
        // Close every open mark (the first one wraps everything into one tuple).
        for _ in stack where stack.contains(.mark) { closeToMark(0x74, .tuple, final: true) }
        b.append(0x2E)
        return b
    }

    @Test(arguments: seeds)
    func randomProgramsAgreeWithReference(seed: UInt64) {
        var r = SplitMix64(seed: seed)
        var decoded = 0
        for i in 0..<1_500 {
            let bytes = Self.program(&r, noise: i % 2 == 0 ? 6 : 1_000)
            for (l, limits) in Self.limitVariants.enumerated() {
                Self.expectAgreement(bytes, limits, "seed \(seed) program \(i) limits \(l)")
            }
            if case .success = Self.decodeBoth(bytes, .default).new { decoded += 1 }
        }
        // The generator must reach the success path often enough to compare values.
        #expect(decoded > 100, "seed \(seed): only \(decoded) programs decoded")
    }

    @Test(arguments: seeds)
    func mutatedPicklesAgreeWithReference(seed: UInt64) {
        var r = SplitMix64(seed: seed)
        for i in 0..<150 {
            let v4 = r.chance(0.5)
            let value = PropertyTests.pickleValue(&r, depth: 0, v4: v4)
            let bytes = PickleWriter(protocol: v4 ? .v4 : .v2).encode(value)
            Self.expectAgreement(bytes, .default, "seed \(seed) case \(i) intact")
            for m in 0..<6 {
                var mutated = bytes
                switch r.next() % 4 {
                case 0: mutated[r.int(0...(mutated.count - 1))] = UInt8(truncatingIfNeeded: r.next())
                case 1: mutated = Array(mutated.prefix(r.int(0...mutated.count)))
                case 2: mutated.insert(r.pick([0x32, 0x94, 0x68, 0x61, 0x62, 0x30, 0x28, 0x65, 0x75]), at: r.int(2...mutated.count))
                default: mutated.remove(at: r.int(0...(mutated.count - 1)))
                }
                for (l, limits) in Self.limitVariants.enumerated() {
                    Self.expectAgreement(mutated, limits, "seed \(seed) case \(i) mutation \(m) limits \(l)")
                }
            }
        }
    }

    /// The expanded size and height kept while parsing equal what walking the graph computes,
    /// whenever the machine claims them exact.
    @Test(arguments: seeds)
    func incrementalSizesMatchTheWalk(seed: UInt64) throws {
        var r = SplitMix64(seed: seed)
        var exact = 0, walked = 0
        for i in 0..<1_500 {
            let bytes = i % 2 == 0 ? Self.program(&r, noise: 1_000) : PickleWriter(protocol: .v4).encode(PropertyTests.pickleValue(&r, depth: 0, v4: true))
            try bytes.withUnsafeBytes { raw in
                var machine = PickleMachine(buffer: raw, limits: .default, allowList: .checkpoint)
                guard let root = try? machine.run() else { return }
                var walk = PickleGraph.ExpansionWalk(graph: machine.graph, limits: .default, offset: 0)
                let walkResult = try? walk.visit(root, depth: 0)
                guard !machine.needsWalk else {
                    walked += 1
                    return
                }
                exact += 1
                let node = machine.graph.nodes[Int(root)]
                let w = try #require(walkResult, "seed \(seed) case \(i): exact sizes but the walk refuses")
                #expect(node.size == w.size && Int(node.height) == w.height, "seed \(seed) case \(i)")
            }
        }
        #expect(exact > 100, "seed \(seed): \(exact) exact")
        #expect(walked > 10, "seed \(seed): \(exact) exact, \(walked) walked")
    }

    // MARK: Memo bombs and cycles

    /// L0 = []; L(i+1) = [L(i), L(i)] (all left on the stack, wrapped in a tuple): 2^levels
    /// nodes once expanded. With `growShared`, L0 then gets an item after it was shared, which
    /// forces the graph walk instead of the sizes kept while parsing.
    static func listBomb(levels: Int, growShared: Bool) -> [UInt8] {
        var b: [UInt8] = [0x80, 0x04, 0x28, 0x5D, 0x94]
        for i in 1...levels {
            let previous = withUnsafeBytes(of: UInt32(i - 1).littleEndian, Array.init)
            b += [0x5D, 0x94, 0x28, 0x6A] + previous + [0x6A] + previous + [0x65]
        }
        if growShared { b += [0x68, 0x00, 0x4E, 0x61, 0x30] }  // GET L0, APPEND None, POP
        return b + [0x74, 0x2E]
    }

    @Test(arguments: [false, true])
    func memoBombsAreRefusedQuickly(growShared: Bool) {
        for levels in [20, 40, 200] {
            let bytes = Self.listBomb(levels: levels, growShared: growShared)
            let clock = ContinuousClock()
            let start = clock.now
            let result = bytes.withUnsafeBytes { raw in Result { () throws(FormatError) in try PickleReader().decode(raw) } }
            let elapsed = clock.now - start
            guard case .failure(let e) = result else {
                Issue.record("\(levels) levels: a 2^\(levels) bomb decoded")
                continue
            }
            #expect(e.code == .limitExceeded, "\(levels) levels: \(e)")
            #expect(elapsed < .milliseconds(500), "\(levels) levels: refused after \(elapsed)")
            // The DCP entry point refuses it the same way.
            #expect(throws: FormatError.self) { try DCPMetadata(decoding: bytes) }
        }
        // Under maxItems but far beyond 64 x the parsed objects: refused by the ratio.
        let ratio = Self.listBomb(levels: 19, growShared: growShared)
        let e = Self.expectRefused(ratio)
        #expect(e?.message.contains("memo bomb") == true, "\(String(describing: e))")
        // Small enough to expand: accepted, identical to the reference.
        Self.expectAgreement(Self.listBomb(levels: 12, growShared: growShared), .default, "12 levels")
        if case .failure(let e) = Self.decodeBoth(Self.listBomb(levels: 12, growShared: growShared), .default).new {
            Issue.record("12 levels refused: \(e)")
        }
    }

    static func expectRefused(_ bytes: [UInt8], limits: PickleLimits = .default, sourceLocation: SourceLocation = #_sourceLocation) -> FormatError? {
        do {
            _ = try PickleReader(limits: limits).decode(bytes)
            Issue.record("decoded", sourceLocation: sourceLocation)
            return nil
        } catch {
            #expect(error.code == .limitExceeded, "\(error)", sourceLocation: sourceLocation)
            return error
        }
    }

    @Test func cyclesAreRefused() {
        // A list appended to itself (DUP, APPEND); a dict set into itself; an object whose BUILD
        // state is itself; a list that contains a tuple that contains it.
        let cycles: [[UInt8]] = [
            [0x80, 0x02, 0x5D, 0x32, 0x61, 0x2E],
            [0x80, 0x02, 0x7D, 0x71, 0x00, 0x4E, 0x68, 0x00, 0x73, 0x2E],
            Array(HostileTests.textGlobal("torch", "Size").dropLast(1)) + [0x32, 0x62, 0x2E],
            [0x80, 0x02, 0x5D, 0x71, 0x00, 0x68, 0x00, 0x85, 0x61, 0x2E],
        ]
        for (i, bytes) in cycles.enumerated() {
            let e = Self.expectRefused(bytes)
            #expect(e?.message.contains("deeper") == true, "cycle \(i): \(String(describing: e))")
            Self.expectAgreement(bytes, .default, "cycle \(i)")
        }
    }

    /// Depth is bounded along every path, also through a node first reached at a shallow depth
    /// (with `growShared`, through the graph walk's cached heights).
    @Test(arguments: [false, true])
    func sharedNodeReachedDeepIsBounded(growShared: Bool) {
        // S = (((([],),),),) of height 5 (6 once [] gets an item) memoized, then (S, ((S,),)).
        var b: [UInt8] = [0x80, 0x02, 0x5D, 0x71, 0x01, 0x85, 0x85, 0x85, 0x85, 0x71, 0x00]
        b += [0x68, 0x00, 0x85, 0x85, 0x86]
        if growShared { b += [0x68, 0x01, 0x4E, 0x61, 0x30] }  // GET [], APPEND None, POP
        b.append(0x2E)
        // The deepest path goes through ((S,),): 1 + 2 + height(S) nodes.
        let height = growShared ? 9 : 8
        for maxDepth in 5...11 {
            let limits = PickleLimits(maxDepth: maxDepth)
            Self.expectAgreement(b, limits, "maxDepth \(maxDepth)")
            let ok = (try? PickleReader(limits: limits).decode(b)) != nil
            #expect(ok == (maxDepth >= height), "maxDepth \(maxDepth)")
        }
    }
}
