import Foundation
import Testing
@testable import CkptFormat

/// Decodes real PyTorch files and re-encodes them with our writers: records and BYTE_IO values
/// must come out byte-identical; `.metadata` must decode to the same model (and, where PyTorch's
/// object identities allow, the same bytes).
@Suite struct ReencodeTests {
    static let dcpNames = Fixtures.dcpFixtureNames.filter { $0 != "e_2rank_safetensors" }

    static func serializationID(_ record: [UInt8]) throws -> String {
        let archive = try ZipArchive(parsing: record)
        let e = try #require(archive.record(".data/serialization_id"))
        return String(decoding: record[e.payloadRange], as: UTF8.self)
    }

    @Test(arguments: dcpNames)
    func recordsReencodeByteIdentical(name: String) throws {
        let md = try DCPMetadata(decoding: try Fixtures.bytes("\(name)/.metadata"))
        var count = 0
        for (index, info) in zip(md.storageData.keys, md.storageData.values) {
            let record = try Fixtures.bytes("\(name)/\(info.relativePath)").slice(info.offset, info.length)
            // No serialization id passed: ours must equal torch's.
            if index.offset == nil {
                let value = try ByteIORecord.decode(record)
                let again = try ByteIORecord.encode(value)
                #expect(again == record, "\(name) \(index.fqn) BYTE_IO re-encode")
            } else {
                let parsed = try TorchTensorRecord.read(record)
                let payload = Array(record[parsed.storageRange])
                let again = try TorchTensorRecord.encode(dtype: parsed.tensor.dtype, shape: parsed.tensor.shape, payload: payload)
                #expect(again == record, "\(name) \(index.fqn) \(index.offset ?? []) tensor record re-encode")
                let layout = try TorchTensorRecord.layout(
                    dtype: parsed.tensor.dtype, shape: parsed.tensor.shape, payloadCRC32: crc32(payload))
                #expect(layout.payloadOffset == parsed.storageRange.lowerBound)
                #expect(layout.recordLength == record.count)
            }
            count += 1
        }
        #expect(count == md.storageData.count)
    }

    /// Whole torch.save files (several storages, non-`archive` prefixes) re-stream byte-identically,
    /// serialization id included.
    @Test(arguments: ["f_consolidated/a_4rank_shard0.pt", "g_lightning_fsdp_sharded/meta.pt"])
    func torchSaveFilesReencodeByteIdentical(path: String) throws {
        let bytes = try Fixtures.bytes(path)
        let file = try TorchSaveFile(parsing: bytes)
        let payloads = file.storages.map { Array(bytes[$0.byteRange]) }
        let again = try TorchSaveWriter.encode(file.value, payloads: payloads, archiveName: file.archive.prefix)
        #expect(again == bytes, "\(path)")
        #expect(try Self.serializationID(again) == Self.serializationID(bytes))
    }

    /// The Lightning file pickles equal strings as distinct objects in places (e.g. the `params`
    /// names), which a value tree cannot express; the re-encoded file has the same tree and layout
    /// rules, and our serialization id matches torch's algorithm on our own bytes.
    @Test func lightningConsolidatedReencodesToSameTree() throws {
        let bytes = try Fixtures.bytes("g_lightning_consolidated.pt")
        let file = try TorchSaveFile(parsing: bytes)
        let payloads = file.storages.map { Array(bytes[$0.byteRange]) }
        let again = try TorchSaveWriter.encode(file.value, payloads: payloads, archiveName: file.archive.prefix)
        let back = try TorchSaveFile(parsing: again)
        #expect(back.value == file.value)
        #expect(back.archive.entries.map(\.name) == file.archive.entries.map(\.name))
        #expect(back.storages.map { Array(again[$0.byteRange]) } == payloads)
        #expect(back.storages.allSatisfy { $0.byteRange.lowerBound % 64 == 0 })
    }

    @Test(arguments: Fixtures.dcpFixtureNames)
    func metadataRoundTrip(name: String) throws {
        let original = try Fixtures.bytes("\(name)/.metadata")
        let md = try DCPMetadata(decoding: original)
        let encoded = md.encoded()
        let again = try DCPMetadata(decoding: encoded)
        #expect(again == md)
        #expect(again.storageData.keys.map(\.index) == md.storageData.keys.map(\.index))
        // The generic pickle trees are equal too (same object graph, whatever the memo layout).
        let reader = PickleReader()
        #expect(try reader.decode(encoded) == reader.decode(original), "\(name): pickle trees differ")
        // Byte identity: multi-rank saves share strings like the gathered style; fixture d was
        // written without a process group (single-process style).
        let style: MetadataPickleStyle = name == "d_1rank_nested" ? .singleProcess : .gathered
        #expect(md.encoded(style: style) == original, "\(name): not byte-identical")
    }

    @Test func gatheredMetadataIsByteIdentical() throws {
        // Fixture c (4 ranks, no BYTE_IO values) matches the gathered sharing pattern exactly.
        let original = try Fixtures.bytes("c_4rank_uneven_empty/.metadata")
        let encoded = try DCPMetadata(decoding: original).encoded(style: .gathered)
        #expect(encoded == original)
    }

    @Test func singleProcessMetadataIsByteIdentical() throws {
        // Fixture d was written without a process group, so all strings are shared like ours.
        let original = try Fixtures.bytes("d_1rank_nested/.metadata")
        let encoded = try DCPMetadata(decoding: original).encoded(style: .singleProcess)
        #expect(encoded == original)
    }
}
