import CkptTestSupport
import Foundation
import Testing
@testable import CkptFormat

/// Reads every DCP fixture through `.metadata` and the chunk records, reassembles each tensor and
/// compares its SHA-256 and every non-tensor value with `manifest.json`.
@Suite struct FixtureTests {
    static let dcpNames = Fixtures.dcpFixtureNames

    @Test func manifestIsLoaded() {
        #expect(Fixtures.fixtures.count >= 8)
        #expect(Self.dcpNames.count == 6)
    }

    @Test(arguments: dcpNames)
    func dcpFixtureTensorsAndValues(name: String) throws {
        let fx = try #require(Fixtures.fixture(name))
        let md = try DCPMetadata(decoding: try Fixtures.bytes("\(name)/.metadata"))
        #expect(md.version == (fx["dcp_version"] as? String))
        let safetensors = (fx["serialization_format"] as? String) == "safetensors"
        var files: [String: [UInt8]] = [:]
        func file(_ f: String) throws -> [UInt8] {
            if let b = files[f] { return b }
            let b = try Fixtures.bytes("\(name)/\(f)")
            files[f] = b
            return b
        }
        let tensors = try #require(fx["tensors"] as? [[String: Any]])
        for t in tensors {
            let fqn = try #require(t["fqn"] as? String)
            let dtype = try #require(DType(torchName: t["dtype"] as? String ?? ""))
            let shape = try #require(t["shape"] as? [Int])
            guard case .tensor(let tsm)? = md.stateDictMetadata[fqn] else {
                Issue.record("\(name): \(fqn) is not a tensor in .metadata")
                continue
            }
            #expect(tsm.size == shape)
            #expect(tsm.properties.dtype == dtype)
            let manifestChunks = try #require(t["chunks"] as? [[String: Any]])
            #expect(tsm.chunks.count == manifestChunks.count, "\(name) \(fqn) chunk count")
            // Planner data path matches the manifest path.
            if let path = t["path"] as? [Any], let pd = md.plannerData?[fqn] {
                let expected: [PlannerPathElement] = path.map { ($0 as? String).map(PlannerPathElement.key) ?? .index(($0 as? Int) ?? -1) }
                #expect(pd == expected, "\(name) \(fqn) planner path")
            }
            let numel = shape.reduce(1, *)
            var global = [UInt8](repeating: 0, count: numel * dtype.itemSize)
            for chunk in tsm.chunks {
                let info = try #require(md.storage(fqn: fqn, offsets: chunk.offsets), "\(name) \(fqn) \(chunk.offsets) has no storage")
                let data = try file(info.relativePath)
                let payload: [UInt8]
                if safetensors {
                    let blob = Array(data[info.offset...])
                    let dcp = try DCPSafetensorsBlob(parsing: blob, dataLength: blob.count - 8 - Int(blob.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))
                    let entry = try dcp.chunk(fqn: fqn, offsets: chunk.offsets)
                    #expect(entry.shape == chunk.sizes)
                    #expect(entry.dataRange.count == info.length)
                    payload = blob.slice(dcp.header.dataOffset + entry.dataRange.lowerBound, entry.dataRange.count)
                } else {
                    let record = data.slice(info.offset, info.length)
                    let parsed = try TorchTensorRecord.read(record)
                    #expect(parsed.prefix == "archive")
                    #expect(parsed.tensor.dtype == dtype)
                    #expect(parsed.tensor.shape == chunk.sizes)
                    #expect(parsed.tensor.isContiguous)
                    payload = Array(record[parsed.tensorRange])
                    // Partial locate from the first 512 bytes agrees with the full parse.
                    var headSize = 256
                    var rounds = 0
                    while rounds < 10 {
                        rounds += 1
                        let head = Array(record.prefix(headSize))
                        let loc = try head.withUnsafeBytes { try TorchTensorRecord.locate(head: $0, recordLength: record.count) }
                        if case .needMoreHead(let n) = loc {
                            #expect(n > headSize && n <= record.count)
                            headSize = n
                            continue
                        }
                        #expect(loc == .located(parsed), "\(name) \(fqn) locate")
                        break
                    }
                    #expect(rounds < 10)
                }
                place(chunk: payload, sizes: chunk.sizes, offsets: chunk.offsets, into: &global, globalShape: shape, itemSize: dtype.itemSize)
            }
            #expect(SHA256.hex(global) == (t["sha256"] as? String), "\(name) \(fqn) sha256")
        }
        // Every tensor in the metadata is in the manifest and vice versa.
        let tensorFQNs = Set(md.stateDictMetadata.entries.compactMap { if case .tensor = $0.value { return $0.key } else { return nil } })
        #expect(tensorFQNs == Set(tensors.compactMap { $0["fqn"] as? String }))
        // Non-tensor values.
        let objects = fx["objects"] as? [[String: Any]] ?? []
        let bytesFQNs = Set(md.stateDictMetadata.entries.compactMap { $0.value == .bytes ? $0.key : nil })
        #expect(bytesFQNs == Set(objects.compactMap { $0["fqn"] as? String }))
        for o in objects {
            let fqn = try #require(o["fqn"] as? String)
            let info = try #require(md.storage(fqn: fqn, offsets: nil))
            #expect(info.offset == (o["offset"] as? Int) && info.length == (o["length"] as? Int))
            let record = try file(info.relativePath).slice(info.offset, info.length)
            let value = try ByteIORecord.decode(record)
            #expect(pyRepr(value) == (o["python_repr"] as? String), "\(name) \(fqn)")
        }
    }

    @Test func consolidatedTorchSave() throws {
        let fx = try #require(Fixtures.fixture("f_consolidated/a_4rank_shard0.pt"))
        let bytes = try Fixtures.bytes("f_consolidated/a_4rank_shard0.pt")
        let file = try TorchSaveFile(parsing: bytes)
        #expect(file.archive.prefix == "a_4rank_shard0")
        #expect(file.storages.count == 6)
        for t in try #require(fx["tensors"] as? [[String: Any]]) {
            let path = try #require(t["path"] as? [String])
            var v: TorchValue? = file.value
            for p in path { v = v?[p] }
            guard case .tensor(let ref)? = v else {
                Issue.record("no tensor at \(path)")
                continue
            }
            #expect(ref.dtype.rawValue == t["dtype"] as? String)
            #expect(ref.shape == t["shape"] as? [Int])
            let storage = try #require(file.storage(ref.storageKey))
            let span = try ref.spannedByteRange()
            let data = Array(bytes[(storage.byteRange.lowerBound + span.lowerBound)..<(storage.byteRange.lowerBound + span.upperBound)])
            #expect(SHA256.hex(data) == t["sha256"] as? String, "\(path)")
        }
        for o in fx["objects"] as? [[String: Any]] ?? [] {
            let path = try #require(o["path"] as? [String])
            var v: TorchValue? = file.value
            for p in path { v = v?[p] }
            #expect(v.map(pyRepr) == o["python_repr"] as? String, "\(path)")
        }
        // Re-streaming the same tree reproduces the file byte for byte (keys, order, alignment,
        // serialization id).
        let payloads = file.storages.map { Array(bytes[$0.byteRange]) }
        let again = try TorchSaveWriter.encode(file.value, payloads: payloads, archiveName: "a_4rank_shard0")
        #expect(again == bytes, "consolidated .pt re-encode is byte-identical")
    }

    @Test func consolidatedSafetensors() throws {
        let fx = try #require(Fixtures.fixture("f_consolidated/a_4rank_shard0.safetensors"))
        let bytes = try Fixtures.bytes("f_consolidated/a_4rank_shard0.safetensors")
        let n = try bytes.withUnsafeBytes { try SafetensorsHeader.headerBytesNeeded(prefix: $0) }
        let header = try SafetensorsHeader.parse(bytes, dataLength: bytes.count - n)
        #expect(header.metadata?["format"] == "pt")
        for t in try #require(fx["tensors"] as? [[String: Any]]) {
            let e = try #require(header.entry(named: t["fqn"] as? String ?? ""))
            #expect(e.dtype.rawValue == t["dtype"] as? String)
            #expect(e.shape == t["shape"] as? [Int])
            #expect(SHA256.hex(bytes.slice(header.dataOffset + e.dataRange.lowerBound, e.dataRange.count)) == t["sha256"] as? String)
        }
        // Re-encoding the header in the file's order reproduces it byte for byte.
        let sorted = header.entries.sorted { $0.dataRange.lowerBound < $1.dataRange.lowerBound }
        let enc = try SafetensorsHeader.encode(tensors: sorted.map { ($0.name, $0.dtype, $0.shape) }, metadata: header.metadata)
        #expect(enc.bytes == Array(bytes.prefix(header.dataOffset)))
    }

    @Test func lightningConsolidatedAndMeta() throws {
        let sharded = try #require(Fixtures.fixture("g_lightning_fsdp_sharded"))
        let consolidated = try #require(sharded["consolidated"] as? [String: Any])
        let bytes = try Fixtures.bytes("g_lightning_consolidated.pt")
        let file = try TorchSaveFile(parsing: bytes)
        guard case .dict(let top) = file.value else {
            Issue.record("top level is not a dict")
            return
        }
        let keys = top.compactMap { if case .string(let s) = $0.key { return s } else { return nil } }
        #expect(keys.sorted() == (consolidated["top_level_keys"] as? [String])?.sorted())
        for t in try #require(sharded["tensors"] as? [[String: Any]]) {
            let path = try #require(t["path"] as? [String])
            var v: TorchValue?
            if path[0] == "model" {
                v = file.value["state_dict"]
                for p in path.dropFirst() { v = v?[p] }
            } else {
                guard case .list(let states)? = file.value["optimizer_states"] else { continue }
                v = states.first
                for p in path.dropFirst() { v = v?[p] }
            }
            guard case .tensor(let ref)? = v, let storage = file.storage(ref.storageKey) else {
                Issue.record("missing tensor \(path)")
                continue
            }
            let span = try ref.spannedByteRange()
            let data = Array(bytes[(storage.byteRange.lowerBound + span.lowerBound)..<(storage.byteRange.lowerBound + span.upperBound)])
            #expect(SHA256.hex(data) == t["sha256"] as? String, "\(path)")
        }
        let meta = try TorchSaveFile(parsing: try Fixtures.bytes("g_lightning_fsdp_sharded/meta.pt"))
        #expect(meta.archive.prefix == "meta")
        let metaPt = try #require(sharded["meta_pt"] as? [String: Any])
        #expect(pyRepr(meta.value) == metaPt["python_repr"] as? String)
    }
}
