import CkptTestSupport
import Foundation
import Testing
@testable import CkptFormat

/// Random write-then-read identities with a seeded PRNG; failures print the seed.
@Suite struct PropertyTests {
    static let seeds: [UInt64] = [1, 2, 3, 0xC0FFEE, 0xDEADBEEF, 42, 7, 99]

    static func string(_ r: inout SplitMix64) -> String {
        let alphabet: [Character] = ["a", "b", "z", "0", ".", "_", " ", "é", "ß", "中", "🙂", "\n", "'", "\""]
        let n = Int(r.next() % 12)
        return String((0..<n).map { _ in alphabet[Int(r.next() % UInt64(alphabet.count))] })
    }

    static func double(_ r: inout SplitMix64) -> Double {
        switch r.next() % 4 {
        case 0: return Double(Int64(bitPattern: r.next()) % 1000) / 7
        case 1: return [0.1, 0.01, 1e-8, 0.999, -0.0, 1e300, .infinity, -.infinity][Int(r.next() % 8)]
        default:
            var d = Double(bitPattern: r.next())
            if d.isNaN { d = 1.5 }
            return d
        }
    }

    static func int(_ r: inout SplitMix64) -> Int64 {
        switch r.next() % 5 {
        case 0: return Int64(r.next() % 256)
        case 1: return Int64(r.next() % 65536)
        case 2: return -Int64(r.next() % 100_000)
        case 3: return Int64(bitPattern: r.next())
        default: return [Int64.min, Int64.max, -1, 0, 1 << 31, -(1 << 31) - 1][Int(r.next() % 6)]
        }
    }

    static let globals: [(String, String)] = [
        ("torch", "Size"), ("torch", "float32"), ("collections", "OrderedDict"), ("pathlib", "PosixPath"),
        ("torch.distributed.checkpoint.metadata", "MetadataIndex"),
    ]

    /// Random tree that survives a raw pickle round trip in protocol `p`.
    static func pickleValue(_ r: inout SplitMix64, depth: Int, v4: Bool) -> PickleValue {
        let leafOnly = depth >= 4
        switch r.next() % (leafOnly ? 7 : 15) {
        case 0: return .none
        case 1: return .bool(r.next() % 2 == 0)
        case 2: return .int(int(&r))
        case 3: return .float(double(&r))
        case 4: return .string(string(&r))
        case 5:
            // A big integer beyond 64 bits, canonical form.
            let n = 9 + Int(r.next() % 8)
            let v = PickleValue.fromTwosComplement((0..<n).map { _ in UInt8(truncatingIfNeeded: r.next()) })
            return v
        case 6:
            if v4 { return .bytes((0..<Int(r.next() % 300)).map { _ in UInt8(truncatingIfNeeded: r.next()) }) }
            return .global(module: globals[0].0, name: globals[0].1)
        case 7: return .tuple((0..<Int(r.next() % 6)).map { _ in pickleValue(&r, depth: depth + 1, v4: v4) })
        case 8: return .list((0..<Int(r.next() % 6)).map { _ in pickleValue(&r, depth: depth + 1, v4: v4) })
        case 9:
            return .dict((0..<Int(r.next() % 5)).map { _ in PickleDictEntry(.string(string(&r)), pickleValue(&r, depth: depth + 1, v4: v4)) })
        case 10:
            let g = globals[Int(r.next() % UInt64(globals.count))]
            return .global(module: g.0, name: g.1)
        case 11:
            let g = globals[Int(r.next() % UInt64(globals.count))]
            var o = PickleObject(
                construction: r.next() % 2 == 0 ? .reduce : .newObj, callable: .global(module: g.0, name: g.1),
                args: .tuple((0..<Int(r.next() % 3)).map { _ in pickleValue(&r, depth: depth + 1, v4: v4) }))
            if r.next() % 2 == 0 { o.state = pickleValue(&r, depth: depth + 1, v4: v4) }
            if r.next() % 3 == 0 { o.dictItems = [PickleDictEntry(.int(1), .string("x"))] }
            if r.next() % 3 == 0 { o.listItems = [.int(2)] }
            return .object(o)
        case 12: return .persistentID(.tuple([.string("storage"), .int(int(&r))]))
        case 13: return v4 ? .set((0..<Int(r.next() % 4)).map { _ in .int(int(&r)) }) : .list([])
        default: return v4 ? .frozenSet((0..<Int(r.next() % 4)).map { _ in .string(string(&r)) }) : .none
        }
    }

    @Test(arguments: seeds)
    func pickleRoundTrip(seed: UInt64) throws {
        var r = SplitMix64(seed: seed)
        let reader = PickleReader()
        for i in 0..<150 {
            for v4 in [false, true] {
                let v = Self.pickleValue(&r, depth: 0, v4: v4)
                let bytes = PickleWriter(protocol: v4 ? .v4 : .v2).encode(v)
                let back = try reader.decode(bytes)
                #expect(back == v, "seed \(seed) case \(i) v4=\(v4)")
                let noReuse = try reader.decode(PickleWriter(protocol: v4 ? .v4 : .v2, reuseStrings: false).encode(v))
                #expect(noReuse == v, "seed \(seed) case \(i) no reuse")
            }
        }
    }

    static func torchValue(_ r: inout SplitMix64, depth: Int) -> TorchValue {
        switch r.next() % (depth >= 3 ? 7 : 10) {
        case 0: return .none
        case 1: return .bool(r.next() % 2 == 0)
        case 2: return .int(int(&r))
        case 3: return .float(double(&r))
        case 4: return .string(string(&r))
        case 5: return .bytes((0..<Int(r.next() % 40)).map { _ in UInt8(truncatingIfNeeded: r.next()) })
        case 6: if case .bigInt(let b) = PickleValue.fromTwosComplement((0..<10).map { _ in UInt8(truncatingIfNeeded: r.next()) }) { return .bigInt(b) } else { return .none }
        case 7: return .tuple((0..<Int(r.next() % 5)).map { _ in torchValue(&r, depth: depth + 1) })
        case 8: return .list((0..<Int(r.next() % 5)).map { _ in torchValue(&r, depth: depth + 1) })
        default:
            return .dict((0..<Int(r.next() % 5)).map { i in TorchValue.Entry(r.next() % 4 == 0 ? .int(Int64(i)) : .string(string(&r)), torchValue(&r, depth: depth + 1)) })
        }
    }

    @Test(arguments: seeds)
    func byteIORoundTrip(seed: UInt64) throws {
        var r = SplitMix64(seed: seed)
        for i in 0..<60 {
            let v = Self.torchValue(&r, depth: 0)
            let record = try ByteIORecord.encode(v)
            #expect(try ByteIORecord.decode(record) == v, "seed \(seed) case \(i)")
            let archive = try ZipArchive(parsing: record)
            #expect(archive.entries.map(\.name) == ["archive/data.pkl", "archive/.format_version", "archive/.storage_alignment", "archive/byteorder", "archive/version", "archive/.data/serialization_id"])
        }
    }

    static func shape(_ r: inout SplitMix64) -> [Int] {
        (0..<Int(r.next() % 4)).map { _ in Int(r.next() % 6) }
    }

    @Test(arguments: seeds)
    func tensorRecordRoundTrip(seed: UInt64) throws {
        var r = SplitMix64(seed: seed)
        for i in 0..<40 {
            let dtype = DType.allCases[Int(r.next() % UInt64(DType.allCases.count))]
            let shape = Self.shape(&r)
            let alignment = [64, 4096, 1, 8][Int(r.next() % 4)]
            let nbytes = shape.reduce(1, *) * dtype.itemSize
            let payload = (0..<nbytes).map { _ in UInt8(truncatingIfNeeded: r.next()) }
            let record = try TorchTensorRecord.encode(dtype: dtype, shape: shape, payload: payload, alignment: alignment)
            let parsed = try TorchTensorRecord.read(record)
            #expect(parsed.tensor.dtype == dtype && parsed.tensor.shape == shape, "seed \(seed) case \(i)")
            #expect(Array(record[parsed.tensorRange]) == payload)
            #expect(parsed.storageRange.lowerBound % alignment == 0)
            let archive = try ZipArchive(parsing: record)
            try record.withUnsafeBytes { raw in
                for e in archive.entries { try ZipArchive.verifyCRC(e, in: raw) }
            }
            let sa = try #require(archive.record(".storage_alignment"))
            #expect(String(decoding: record[sa.payloadRange], as: UTF8.self) == String(alignment))
            // Partial locate converges to the full parse.
            var head = 64
            var located = false
            for _ in 0..<20 {
                let loc = try Array(record.prefix(head)).withUnsafeBytes { try TorchTensorRecord.locate(head: $0, recordLength: record.count) }
                switch loc {
                case .located(let l):
                    #expect(l == parsed, "seed \(seed) case \(i) locate")
                    located = true
                case .needMoreHead(let n):
                    #expect(n > head)
                    head = n
                }
                if located { break }
            }
            #expect(located, "seed \(seed) case \(i) never located")
            let pkl = try PickleReader().decode(Array(record[try #require(archive.record("data.pkl")).payloadRange]))
            guard case .object(let o) = pkl else {
                Issue.record("data.pkl is not a rebuild call")
                continue
            }
            #expect(o.callableName?.name == (dtype.storageClassName != nil ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3"))
        }
    }

    @Test(arguments: seeds)
    func streamingTorchSaveRoundTrip(seed: UInt64) throws {
        var r = SplitMix64(seed: seed)
        for i in 0..<15 {
            // A nested dict with tensor leaves and plain values.
            var entries: [TorchValue.Entry] = []
            var tensors: [(DType, [Int])] = []
            for k in 0..<Int(1 + r.next() % 6) {
                if r.next() % 3 == 0 {
                    entries.append(TorchValue.Entry(.string("v\(k)"), Self.torchValue(&r, depth: 2)))
                } else {
                    let dtype = DType.allCases[Int(r.next() % UInt64(DType.allCases.count))]
                    let shape = Self.shape(&r)
                    tensors.append((dtype, shape))
                    entries.append(TorchValue.Entry(.string("t\(k)"), .list([.tensor(.contiguous(dtype: dtype, shape: shape))])))
                }
            }
            let value = TorchValue.dict(entries)
            var writer = try TorchSaveWriter(value: value, archiveName: "ckpt", alignment: r.next() % 2 == 0 ? 64 : 4096)
            #expect(writer.storages.count == tensors.count)
            var out = try writer.start()
            var payloads: [[UInt8]] = []
            for s in writer.storages {
                out += try writer.beginStorage()
                #expect(out.count % writer.storages.count >= 0)
                let p = (0..<s.byteCount).map { _ in UInt8(truncatingIfNeeded: r.next()) }
                payloads.append(p)
                out += p
                out += try writer.endStorage(crc32: crc32(p))
            }
            out += try writer.finish()
            let file = try TorchSaveFile(parsing: out)
            #expect(file.archive.prefix == "ckpt")
            #expect(file.value == writer.value, "seed \(seed) case \(i)")
            for (j, s) in file.storages.enumerated() {
                #expect(Array(out[s.byteRange]) == payloads[j])
            }
        }
    }

    static func metadata(_ r: inout SplitMix64) -> DCPMetadata {
        var md = DCPMetadata()
        var planner = OrderedMap<String, [PlannerPathElement]>()
        for t in 0..<Int(r.next() % 8) {
            let fqn = "m.\(t).\(string(&r))"
            if r.next() % 4 == 0 {
                md.stateDictMetadata[fqn] = .bytes
                md.storageData[MetadataIndex(fqn: fqn)] = StorageInfo(relativePath: "__0_0.distcp", offset: Int(r.next() % 1_000_000), length: 1261)
            } else {
                let shape = shape(&r)
                let dtype = DType.allCases[Int(r.next() % UInt64(DType.allCases.count))]
                var chunks: [ChunkStorageMetadata] = []
                for c in 0..<Int(1 + r.next() % 3) {
                    let offs = shape.map { _ in Int(r.next() % 4) }
                    chunks.append(ChunkStorageMetadata(offsets: offs, sizes: shape))
                    let big = r.next() % 3 == 0
                    md.storageData[MetadataIndex(fqn: fqn, offset: offs, index: c)] = StorageInfo(
                        relativePath: "__\(c)_0.distcp", offset: big ? Int(r.next() % (1 << 40)) : Int(r.next() % 70000),
                        length: Int(r.next() % 5000), transformDescriptors: r.next() % 5 == 0 ? ["zstd"] : nil)
                }
                let props = TensorProperties(
                    dtype: dtype, requiresGrad: r.next() % 2 == 0, memoryFormat: Int(r.next() % 3), pinMemory: r.next() % 2 == 0,
                    strides: r.next() % 4 == 0 ? nil : contiguousStrides(shape))
                md.stateDictMetadata[fqn] = .tensor(TensorStorageMetadata(properties: props, size: shape, chunks: chunks))
            }
            planner[fqn] = [.key("m"), .index(t), .key(string(&r))]
        }
        md.plannerData = r.next() % 4 == 0 ? nil : planner
        switch r.next() % 4 {
        case 0: md.storageMeta = nil
        case 1: md.storageMeta = StorageMeta(checkpointID: .path(className: "PosixPath", components: ["/", "tmp", string(&r)]), saveID: "id", modules: ["a"])
        case 2: md.storageMeta = StorageMeta(checkpointID: .string(string(&r)), saveID: nil, loadID: "x")
        default: md.storageMeta = StorageMeta()
        }
        md.version = r.next() % 5 == 0 ? nil : "1.0.0"
        return md
    }

    @Test(arguments: seeds)
    func metadataRoundTrip(seed: UInt64) throws {
        var r = SplitMix64(seed: seed)
        for i in 0..<30 {
            let md = Self.metadata(&r)
            for style in [MetadataPickleStyle.gathered, .singleProcess] {
                let back = try DCPMetadata(decoding: md.encoded(style: style))
                #expect(back == md, "seed \(seed) case \(i)")
                #expect(back.storageData.keys.map(\.index) == md.storageData.keys.map(\.index))
                #expect(back.storageData.values.map(\.transformDescriptors) == md.storageData.values.map(\.transformDescriptors))
            }
            for (k, v) in zip(md.storageData.keys, md.storageData.values) {
                #expect(md.storage(fqn: k.fqn, offsets: k.offset) == v)
            }
        }
    }

    @Test(arguments: seeds)
    func safetensorsRoundTrip(seed: UInt64) throws {
        var r = SplitMix64(seed: seed)
        let stDTypes = DType.allCases.filter { $0.safetensorsName != nil }
        for i in 0..<40 {
            var tensors: [(name: String, dtype: DType, shape: [Int])] = []
            for k in 0..<Int(r.next() % 6) {
                tensors.append(("t\(k)" + Self.string(&r), stDTypes[Int(r.next() % UInt64(stDTypes.count))], Self.shape(&r)))
            }
            var meta: OrderedMap<String, String>?
            if r.next() % 2 == 0 {
                var m = OrderedMap<String, String>()
                m["format"] = "pt"
                m[Self.string(&r) + "k"] = Self.string(&r)
                meta = m
            }
            let enc = try SafetensorsHeader.encode(tensors: tensors, metadata: meta)
            #expect(enc.bytes.count % 8 == 0)
            let parsed = try SafetensorsHeader.parse(enc.bytes, dataLength: enc.header.dataLength)
            #expect(parsed == enc.header, "seed \(seed) case \(i)")
        }
    }

    @Test func zip64LayoutWithoutAllocating() throws {
        // A 5 GiB payload followed by a small entry: check local header, descriptors, CD and end
        // records by parsing the tail with the real central-directory parser.
        let big = 5 << 30
        var w = try ZipStreamWriter(alignment: 64)
        let small1 = try w.addEntry(name: "archive/data.pkl", payload: [1, 2, 3])
        let bigHeader = try w.beginEntry(name: "archive/data/0", size: big)
        let payloadOffset = small1.count + bigHeader.count
        #expect(payloadOffset % 64 == 0)
        // Local header: sizes 0, zip64 extra (id 1, 16 bytes: size, 0) before FB.
        let extraStart = 30 + "archive/data/0".utf8.count
        #expect(bigHeader[extraStart] == 1 && bigHeader[extraStart + 1] == 0 && bigHeader[extraStart + 2] == 16)
        #expect(bigHeader[extraStart + 20] == 0x46 && bigHeader[extraStart + 21] == 0x42)
        let desc = try w.endEntry(crc32: 0x1234_5678)
        #expect(desc.count == 24)
        let afterBig = payloadOffset + big + desc.count
        let farHeader = try w.beginEntry(name: "archive/version", size: 2)
        #expect(farHeader[extraStart - "archive/data/0".utf8.count + "archive/version".utf8.count] == 1)  // zip64 block with offset
        let farDesc = try w.endEntry(crc32: crc32([0x33, 0x0A]))
        #expect(farDesc.count == 24)
        let tailStart = afterBig + farHeader.count + 2 + farDesc.count
        let trailer = try w.finish()
        #expect(w.offset == tailStart + trailer.count)
        let cd = try trailer.withUnsafeBytes { try ZipArchive.parseCentralDirectory(tail: $0, tailOffset: tailStart, archiveLength: w.offset) }
        #expect(cd.entries.map(\.name) == ["archive/data.pkl", "archive/data/0", "archive/version"])
        #expect(cd.entries[1].size == big && cd.entries[1].localHeaderOffset == small1.count && cd.entries[1].crc32 == 0x1234_5678)
        #expect(cd.entries[2].localHeaderOffset == afterBig)
        #expect(cd.centralDirectoryOffset == tailStart)
        // Classic EOCD: cd offset sentinel; zip64 end record present.
        let eocd = trailer.suffix(22)
        #expect(Array(eocd.prefix(4)) == [0x50, 0x4B, 0x05, 0x06])
        #expect(Array(eocd.dropFirst(16).prefix(4)) == [0xFF, 0xFF, 0xFF, 0xFF])
    }
}

/// Reading a big archive from its tail plus small local-header reads agrees with the full parse.
@Test func tailOnlyReadMatchesFullParse() throws {
    let bytes = try Fixtures.bytes("f_consolidated/a_4rank_shard0.pt")
    let full = try ZipArchive(parsing: bytes)
    var tailSize = 64
    var cd: ZipArchive.CentralDirectory?
    var rounds = 0
    while cd == nil && rounds < 10 {
        rounds += 1
        let start = bytes.count - tailSize
        do {
            cd = try Array(bytes[start...]).withUnsafeBytes { try ZipArchive.parseCentralDirectory(tail: $0, tailOffset: start, archiveLength: bytes.count) }
        } catch let error as FormatError {
            #expect(error.code == .truncated, "\(error)")
            #expect(error.offset < start)
            tailSize = bytes.count - error.offset
        }
    }
    let dir = try #require(cd)
    #expect(dir.prefix == full.prefix)
    for (e, f) in zip(dir.entries, full.entries) {
        let header = Array(bytes[e.localHeaderOffset..<min(bytes.count, e.localHeaderOffset + 128)])
        let resolved = try header.withUnsafeBytes { try ZipArchive.resolvePayload(of: e, localHeader: $0, centralDirectoryOffset: dir.centralDirectoryOffset) }
        #expect(resolved == f)
    }
}

/// A 260 KB protocol-4 pickle (several 64 KiB frames) and its protocol-2 twin, compared with digests of what
/// CPython 3.11's `pickle.dumps` produced for the same value:
/// `[{'name': 'item%d' % i, 'vals': (i, i * 1.5, -i * 100000, 2**40 + i), 'flag': i % 3 == 0,
///    'none': None, 'tags': ['x%d' % i]} for i in range(4000)]`.
@Test func largePicklesMatchCPython() throws {
    var items: [PickleValue] = []
    for i in 0..<4_000 {
        let n = Int64(i)
        items.append(
            .dict([
                PickleDictEntry(.string("name"), .string("item\(i)")),
                PickleDictEntry(.string("vals"), .tuple([.int(n), .float(Double(i) * 1.5), .int(-n * 100_000), .int((1 << 40) + n)])),
                PickleDictEntry(.string("flag"), .bool(i % 3 == 0)),
                PickleDictEntry(.string("none"), .none),
                PickleDictEntry(.string("tags"), .list([.string("x\(i)")])),
            ]))
    }
    let value = PickleValue.list(items)
    let v4 = PickleWriter(protocol: .v4).encode(value)
    #expect(v4.count == 261_595)
    #expect(SHA256.hex(v4) == "7cce193a446c462fd714df9c8a82788994dfdd353db15fddf96cec77865fff65")
    let v2 = PickleWriter(protocol: .v2).encode(value)
    #expect(v2.count == 364_830)
    #expect(SHA256.hex(v2) == "9a729b73e503da99eb2eb0fada8fb67665fc3df9f9a16a7c683307653a94a3b9")
    #expect(try PickleReader().decode(v4) == value)
}
