import CkptTestSupport
import Foundation
import Testing
@testable import CkptFormat

/// `DCPMetadata(decoding:)` reads the model straight from the pickle graph
/// (`MetadataGraphDecoder`); the reference is the tree decoder (`MetadataDecoder` over
/// `PickleReader.decode`). On every input both give the same model or the same error, and the
/// graph decoder alone (without its fallback to the tree decoder) accepts exactly what the
/// reference accepts. Failures print the seed and case.
@Suite struct MetadataFastPathTests {
    static let seeds: [UInt64] = [5, 6, 0xACE, 0x5EED, 31337, 8]
    static let md = "torch.distributed.checkpoint.metadata"

    /// `==` plus the fields `DCPMetadata ==` ignores (`MetadataIndex.index`).
    static func identical(_ a: DCPMetadata, _ b: DCPMetadata) -> Bool {
        a == b && a.storageData.keys.map(\.index) == b.storageData.keys.map(\.index)
            && a.storageData.values.map(\.transformDescriptors) == b.storageData.values.map(\.transformDescriptors)
    }

    /// Decodes `bytes` through the public entry point, the reference and the bare graph decoder,
    /// and checks that they agree. Returns whether the reference accepted it.
    @discardableResult
    static func expectAgreement(_ bytes: [UInt8], _ context: String, reader: PickleReader = PickleReader()) -> Bool {
        bytes.withUnsafeBytes { raw in
            let fast = Result { () throws(FormatError) in try DCPMetadata(decoding: raw, reader: reader) }
            let reference = Result { () throws(FormatError) in try DCPMetadata.decodingTree(raw, reader: reader) }
            let bare = Result { () throws(FormatError) -> DCPMetadata in
                let parsed = try reader.parseGraph(raw)
                return try MetadataGraphDecoder(graph: parsed.graph).metadata(parsed.root)
            }
            switch (fast, reference) {
            case (.success(let a), .success(let b)):
                #expect(identical(a, b), "\(context): models differ")
            case (.failure(let a), .failure(let b)):
                #expect(a == b, "\(context): \(a) vs reference \(b)")
            case (.success, .failure(let b)):
                Issue.record("\(context): decoded, reference refused: \(b)")
            case (.failure(let a), .success):
                Issue.record("\(context): refused (\(a)), reference decoded it")
            }
            switch (bare, reference) {
            case (.success(let a), .success(let b)):
                #expect(identical(a, b), "\(context): graph decoder model differs")
            case (.failure, .failure): break
            case (.success, .failure(let b)):
                Issue.record("\(context): graph decoder accepted what the reference refuses: \(b)")
            case (.failure(let a), .success):
                Issue.record("\(context): graph decoder refused (\(a)) what the reference accepts")
            }
            if case .success = reference { return true }
            return false
        }
    }

    // MARK: Random DCP-shaped trees

    static func newObj(_ module: String = md, _ name: String, state: PickleValue?, _ r: inout SplitMix64) -> PickleValue {
        .object(
            PickleObject(
                construction: r.next() % 8 == 0 ? .reduce : .newObj, callable: .global(module: module, name: name), args: .tuple([]),
                state: state))
    }

    static func reduce(_ module: String, _ name: String, _ args: [PickleValue]) -> PickleValue {
        .object(PickleObject(construction: .reduce, callable: .global(module: module, name: name), args: .tuple(args)))
    }

    /// An object state: one dict, the `(dict, slots)` tuple form split in two, or with None.
    static func state(_ entries: [(String, PickleValue)], _ r: inout SplitMix64) -> PickleValue {
        var entries = entries
        if r.next() % 10 == 0, let e = entries.randomElement(using: &r) { entries.append(e) }  // a repeated key: the last wins
        let pairs = entries.map { PickleDictEntry(.string($0.0), $0.1) }
        switch r.next() % 8 {
        case 0:
            let cut = r.int(0...pairs.count)
            return .tuple([.dict(Array(pairs[..<cut])), .dict(Array(pairs[cut...]))])
        case 1: return .tuple([.dict(pairs), .none])
        default: return .dict(pairs)
        }
    }

    static func ints(_ v: [Int], _ r: inout SplitMix64) -> PickleValue {
        let items = v.map { PickleValue.int(Int64($0)) }
        return r.next() % 6 == 0 ? .list(items) : .tuple(items)
    }

    /// `torch.Size(v)` mostly; sometimes a plain tuple or list.
    static func size(_ v: [Int], _ r: inout SplitMix64) -> PickleValue {
        switch r.next() % 8 {
        case 0: return ints(v, &r)
        case 1 where v.isEmpty: return reduce("torch", "Size", [])
        default: return reduce("torch", "Size", [.tuple(v.map { .int(Int64($0)) })])
        }
    }

    static func optional(_ v: PickleValue, _ r: inout SplitMix64) -> PickleValue? {
        switch r.next() % 10 {
        case 0: return nil
        case 1: return PickleValue.none
        default: return v
        }
    }

    static func entries(_ pairs: [(String, PickleValue?)]) -> [(String, PickleValue)] {
        pairs.compactMap { k, v in v.map { (k, $0) } }
    }

    static func properties(_ dtype: DType, rank: Int, _ r: inout SplitMix64) -> PickleValue {
        let layout = r.chance(0.8) ? reduce("torch.serialization", "_get_layout", [.string("torch.strided")]) : PickleValue.none
        let flag: (inout SplitMix64) -> PickleValue = { r in r.pick([.bool(false), .bool(true), .int(0), .int(1), .none]) }
        let memoryFormat = r.chance(0.8) ? reduce(md, "_MEM_FORMAT_ENCODING", [.int(Int64(r.int(0...2)))]) : PickleValue.none
        let strides = r.chance(0.7) ? ints((0..<rank).map { _ in r.int(1...9) }, &r) : PickleValue.none
        let values: [PickleValue] = [.global(module: "torch", name: dtype.torchName), layout, flag(&r), memoryFormat, flag(&r), strides]
        let state: PickleValue
        switch r.next() % 4 {
        case 0: state = .tuple(Array(values.prefix(5)))
        case 1:
            let names = ["dtype", "layout", "requires_grad", "memory_format", "pin_memory", "strides"]
            // Every entry but dtype may be missing.
            state = .dict(zip(names, values).filter { k, _ in k == "dtype" || r.next() % 8 != 0 }.map { PickleDictEntry(.string($0), $1) })
        default: state = .tuple(values)
        }
        return newObj(md, "TensorProperties", state: state, &r)
    }

    /// A random `Metadata` object graph covering every form the decoder accepts.
    static func metadataTree(_ r: inout SplitMix64) -> PickleValue {
        var sdm: [PickleDictEntry] = []
        var planner: [PickleDictEntry] = []
        var storage: [PickleDictEntry] = []
        for t in 0..<r.int(0...5) {
            let fqn = "layer.\(t).\(PropertyTests.string(&r))"
            if r.next() % 5 == 0 {
                sdm.append(PickleDictEntry(.string(fqn), newObj(md, "BytesStorageMetadata", state: r.chance(0.5) ? nil : .dict([]), &r)))
                let index = newObj(md, "MetadataIndex", state: state(entries([("fqn", .string(fqn)), ("offset", optional(.none, &r)), ("index", optional(.none, &r))]), &r), &r)
                storage.append(PickleDictEntry(index, storageInfo(&r)))
            } else {
                let rank = r.int(0...3)
                let shape = (0..<rank).map { _ in r.int(0...9) }
                var chunks: [PickleValue] = []
                for c in 0..<r.int(0...3) {
                    let offsets = shape.map { _ in r.int(0...4) }
                    chunks.append(newObj(md, "ChunkStorageMetadata", state: state([("offsets", size(offsets, &r)), ("sizes", size(shape, &r))], &r), &r))
                    let index = newObj(
                        md, "MetadataIndex",
                        state: state(entries([("fqn", .string(fqn)), ("offset", size(offsets, &r)), ("index", optional(.int(Int64(c)), &r))]), &r), &r)
                    storage.append(PickleDictEntry(index, storageInfo(&r)))
                }
                let dtype = DType.allCases[r.int(0...(DType.allCases.count - 1))]
                let tensorState = state(
                    [("properties", properties(dtype, rank: rank, &r)), ("size", size(shape, &r)), ("chunks", .list(chunks))], &r)
                sdm.append(PickleDictEntry(.string(fqn), newObj(md, "TensorStorageMetadata", state: tensorState, &r)))
            }
            let path: [PickleValue] = [.string("layer"), .int(Int64(t)), .string(PropertyTests.string(&r))]
            planner.append(PickleDictEntry(.string(fqn), r.chance(0.8) ? .tuple(path) : .list(path)))
        }
        let checkpointID: PickleValue = r.pick([
            .none, .string("/tmp/x"), reduce("pathlib", r.pick(["PosixPath", "WindowsPath"]), [.string("/"), .string("ck")]),
        ])
        let storageMeta = newObj(
            md, "StorageMeta",
            state: state(
                entries([
                    ("checkpoint_id", optional(checkpointID, &r)), ("save_id", optional(.string("u"), &r)),
                    ("load_id", optional(.string("l"), &r)), ("modules", optional(r.chance(0.5) ? .list([.string("m")]) : .tuple([]), &r)),
                ]), &r), &r)
        let top = entries([
            ("state_dict_metadata", .dict(sdm)),
            ("planner_data", optional(.dict(planner), &r)),
            ("storage_data", optional(.dict(storage), &r)),
            ("storage_meta", optional(storageMeta, &r)),
            ("version", optional(.string("1.0.0"), &r)),
        ])
        return newObj(md, "Metadata", state: state(top, &r), &r)
    }

    static func storageInfo(_ r: inout SplitMix64) -> PickleValue {
        let transforms: PickleValue? = r.chance(0.8) ? nil : r.pick([PickleValue.none, .list([.string("zstd")]), .tuple([])])
        return newObj(
            "torch.distributed.checkpoint.filesystem", "_StorageInfo",
            state: state(
                entries([
                    ("relative_path", .string("__\(r.int(0...3))_0.distcp")), ("offset", .int(Int64(r.int(0...1 << 20)))),
                    ("length", .int(Int64(r.int(0...5000)))), ("transform_descriptors", transforms),
                ]), &r), &r)
    }

    /// Replaces random subtrees with random values, None, or an empty container; drops or
    /// repeats dict entries; renames keys (non-ASCII too).
    static func perturb(_ v: PickleValue, _ r: inout SplitMix64, rate: UInt64) -> PickleValue {
        if r.next() % rate == 0 {
            if r.chance(0.3) { return PropertyTests.pickleValue(&r, depth: 3, v4: true) }
            return r.pick([PickleValue.none, .int(-1), .bool(true), .string("x"), .list([]), .tuple([]), .dict([])])
        }
        switch v {
        case .tuple(let a): return .tuple(a.map { perturb($0, &r, rate: rate) })
        case .list(let a): return .list(a.map { perturb($0, &r, rate: rate) })
        case .dict(let e):
            var out: [PickleDictEntry] = []
            for entry in e {
                switch r.next() % (rate * 2) {
                case 0: continue
                case 1: out += [entry, entry]
                case 2:
                    guard case .string(let k) = entry.key else { fallthrough }
                    out.append(PickleDictEntry(.string(r.pick([k + "é", k.uppercased(), String(k.dropLast()), k + "\u{301}"])), entry.value))
                default: out.append(PickleDictEntry(perturb(entry.key, &r, rate: rate), perturb(entry.value, &r, rate: rate)))
                }
            }
            return .dict(out)
        case .object(var o):
            if r.next() % (rate * 2) == 0 {
                o.callable = .global(module: r.pick(["torch", md, "pathlib"]), name: r.pick(["Size", "Metadata", "float32", "PosixPath", "MetadataIndex"]))
            }
            if r.next() % (rate * 2) == 0 { o.construction = o.construction == .reduce ? .newObj : .reduce }
            o.args = perturb(o.args, &r, rate: rate)
            o.state = o.state.map { perturb($0, &r, rate: rate) }
            return .object(o)
        default: return v
        }
    }

    @Test(arguments: seeds)
    func randomMetadataGraphsAgree(seed: UInt64) {
        var r = SplitMix64(seed: seed)
        var accepted = 0, refused = 0
        for i in 0..<250 {
            let tree = Self.metadataTree(&r)
            // Intact: must decode.
            let bytes = PickleWriter(protocol: r.chance(0.5) ? .v4 : .v2, reuseStrings: r.chance(0.5)).encode(tree)
            #expect(Self.expectAgreement(bytes, "seed \(seed) case \(i)"), "seed \(seed) case \(i): a valid tree was refused")
            for p in 0..<4 {
                let perturbed = Self.perturb(tree, &r, rate: [8, 20, 60, 200][p])
                if Self.expectAgreement(PickleWriter(protocol: .v4).encode(perturbed), "seed \(seed) case \(i) perturbation \(p)") {
                    accepted += 1
                } else {
                    refused += 1
                }
            }
        }
        // Both outcomes must be exercised.
        #expect(accepted > 50 && refused > 50, "seed \(seed): \(accepted) accepted, \(refused) refused")
    }

    @Test(arguments: seeds)
    func encodedMetadataAgrees(seed: UInt64) throws {
        var r = SplitMix64(seed: seed)
        for i in 0..<40 {
            let model = PropertyTests.metadata(&r)
            for style in [MetadataPickleStyle.gathered, .singleProcess] {
                let bytes = model.encoded(style: style)
                Self.expectAgreement(bytes, "seed \(seed) case \(i)")
                #expect(Self.identical(try DCPMetadata(decoding: bytes), model), "seed \(seed) case \(i)")
                // Byte-level damage: flips, truncation.
                var damaged = bytes
                damaged[r.int(0...(bytes.count - 1))] ^= UInt8(truncatingIfNeeded: 1 << r.int(0...7))
                Self.expectAgreement(damaged, "seed \(seed) case \(i) flipped")
                Self.expectAgreement(Array(bytes.prefix(r.int(0...bytes.count))), "seed \(seed) case \(i) truncated")
            }
        }
    }

    @Test(arguments: Fixtures.dcpFixtureNames)
    func fixturesAgree(name: String) throws {
        let bytes = try Fixtures.bytes("\(name)/.metadata")
        #expect(Self.expectAgreement(bytes, name))
        var r = SplitMix64(seed: UInt64(bytes.count))
        for k in 0..<60 {
            var damaged = bytes
            damaged[r.int(0...(bytes.count - 1))] = UInt8(truncatingIfNeeded: r.next())
            Self.expectAgreement(damaged, "\(name) damage \(k)")
        }
        // Tight limits apply to the graph path as to the tree path.
        for limits in [PickleLimits(maxDepth: 6), PickleLimits(maxItems: 500), PickleLimits(maxMemoEntries: 20), PickleLimits(maxStringLength: 8)] {
            Self.expectAgreement(bytes, "\(name) \(limits)", reader: PickleReader(limits: limits))
        }
    }

    /// A large model (the benchmark's shape, smaller): both paths agree, through batches of
    /// 1000 SETITEMS / APPENDS.
    @Test func largeMetadataAgrees() throws {
        var state = OrderedMap<String, StorageMetadata>()
        var storage = OrderedMap<MetadataIndex, StorageInfo>()
        for t in 0..<300 {
            let fqn = "model.layers.\(t / 12).block\(t % 12).weight"
            var chunks: [ChunkStorageMetadata] = []
            for rank in 0..<4 {
                let chunk = ChunkStorageMetadata(offsets: [rank * 64, 0], sizes: [64, 1024])
                chunks.append(chunk)
                storage[MetadataIndex(fqn: fqn, offset: chunk.offsets, index: rank)] = StorageInfo(
                    relativePath: "__\(rank)_0.distcp", offset: t * 131_072, length: 131_072)
            }
            state[fqn] = .tensor(TensorStorageMetadata(properties: TensorProperties(dtype: .bfloat16), size: [256, 1024], chunks: chunks))
        }
        let model = DCPMetadata(stateDictMetadata: state, storageData: storage)
        let bytes = model.encoded()
        #expect(Self.expectAgreement(bytes, "large"))
        #expect(Self.identical(try DCPMetadata(decoding: bytes), model))
    }

    /// Keys and globals are compared as Swift strings (canonical equivalence), like the tree.
    @Test func nonASCIIKeysAndGlobals() {
        let base = PickleValue.object(
            PickleObject(
                construction: .newObj, callable: .global(module: Self.md, name: "Metadata"), args: .tuple([]),
                state: .dict([PickleDictEntry(.string("state_dict_metadata"), .dict([])), PickleDictEntry(.string("version"), .string("1.0.0"))])))
        #expect(Self.expectAgreement(PickleWriter(protocol: .v4).encode(base), "base"))
        for key in ["versioń", "version\u{301}", "vérsion", "\u{FEFF}version"] {
            guard case .object(var o) = base else { return }
            o.state = .dict([PickleDictEntry(.string("state_dict_metadata"), .dict([])), PickleDictEntry(.string(key), .int(3))])
            // The misspelled key is ignored: version None (both paths).
            #expect(Self.expectAgreement(PickleWriter(protocol: .v4).encode(.object(o)), key))
        }
    }
}
