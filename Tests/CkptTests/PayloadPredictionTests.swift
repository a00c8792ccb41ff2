import CkptFormat
import CkptIO
import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

/// Loads predict where a record's payload is from its length (standard torch.save layouts) and
/// check the prediction against the record's head read in the same pipeline, unless ckpt's
/// checksum sidecar names the same place. These tests make the prediction wrong on purpose.
@Suite struct PayloadPredictionTests {
    /// Saves one float32 tensor of `shape` (from one rank) into `path`; returns it and where its
    /// record is.
    static func saveOne(shape: [Int], seed: UInt64, path: String, engine: IOEngine) async throws -> (GlobalTensor, StorageInfo) {
        var rng = SplitMix64(seed: seed)
        let tensor = GlobalTensor(fqn: "w", dtype: .float32, shape: shape, rng: &rng)
        let buffer = TensorBuffer(byteCount: tensor.bytes.count)
        buffer.bytes.copyBytes(from: tensor.bytes)
        var state = StateDict()
        state.set("w", .tensor(.whole(dtype: .float32, shape: shape, buffer: buffer)))
        let saved = state
        _ = try await onRanks(1) { comm in try await Checkpointer(engine: engine, communicator: comm).save(saved, to: path) }
        let metadata = try DCPMetadata(decoding: Array(try Data(contentsOf: URL(fileURLWithPath: path + "/.metadata"))))
        let info = try #require(metadata.storage(fqn: "w", offsets: Array(repeating: 0, count: shape.count)))
        return (tensor, info)
    }

    /// A record of the predicted length whose payload sits elsewhere (64-byte alignment instead of
    /// 4096, zero padding after the archive) loads correctly: the head contradicts the guess and
    /// the chunk is read again at its real place.
    /// (Without the sidecar, which would vouch for the standard place: with it and checksums on,
    /// the tampering is a checksum mismatch; see below.)
    @Test(arguments: [false, true])
    func recordWithTheExpectedLengthButAnotherLayoutLoadsCorrectly(verify: Bool) async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        // Large enough for a direct, 4096-aligned payload (>= 256 KiB).
        let shape = [256, 300]
        let path = dir.path + "/ckpt"
        let (tensor, info) = try await Self.saveOne(shape: shape, seed: 77, path: path, engine: engine)

        // Rewrite the record: same bytes of tensor, 64-byte payload alignment, padded to the
        // original length.
        let layout = try TorchTensorRecord.layout(dtype: .float32, shape: shape, payloadCRC32: 0, alignment: 64)
        let standard = try TorchTensorRecord.layout(dtype: .float32, shape: shape, payloadCRC32: 0, alignment: 4096)
        #expect(standard.recordLength == info.length, "the save wrote a standard 4096-aligned record")
        #expect(layout.payloadOffset != standard.payloadOffset)
        var record = layout.prefix + tensor.bytes + layout.suffix
        #expect(record.count < info.length)
        record += [UInt8](repeating: 0, count: info.length - record.count)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path + "/" + info.relativePath))
        try handle.seek(toOffset: UInt64(info.offset))
        try handle.write(contentsOf: record)
        try handle.close()
        if verify {
            // The sidecar and the layout agree on the standard place, where the bytes changed.
            let out = TensorBuffer(byteCount: tensor.bytes.count)
            do {
                _ = try await onRanks(1) { comm in
                    var request = StateDict()
                    request.set("w", .tensor(.whole(dtype: .float32, shape: shape, buffer: out)))
                    return try await Checkpointer(engine: engine, communicator: comm, options: CheckpointOptions(verifyChecksums: true))
                        .load(into: request, from: path)
                }
                Issue.record("a rewritten record passed checksum verification")
            } catch let error as CheckpointError {
                #expect(error.code == .corrupt && error.description.contains("checksum mismatch"), "\(error)")
            }
        }
        try FileManager.default.removeItem(atPath: path + "/" + Checkpointer.checksumFileName)

        // Loaded whole (one rank) and in halves (two ranks): every byte right.
        for ranks in [1, 2] {
            let rows = shape[0] / ranks
            let outs = (0..<ranks).map { _ in TensorBuffer(byteCount: rows * shape[1] * 4) }
            let reports = try await onRanks(ranks) { comm in
                var request = StateDict()
                request.set("w", .tensor(TensorEntry(dtype: .float32, globalShape: shape, chunks: [
                    TensorChunk(offsets: [comm.rank * rows, 0], sizes: [rows, shape[1]], buffer: outs[comm.rank]),
                ])))
                return try await Checkpointer(engine: engine, communicator: comm).load(into: request, from: path)
            }
            for rank in 0..<ranks {
                let same = Array(outs[rank].bytes) == tensor.block(offsets: [rank * rows, 0], sizes: [rows, shape[1]])
                #expect(same, "\(ranks) ranks, rank \(rank): loaded bytes differ")
            }
            #expect(reports.allSatisfy { $0.neededBytes > 0 })
        }
    }

    /// A head that cannot be parsed at all: with the sidecar naming the payload's place, the head
    /// is not needed and the intact payload loads; without it, the head is read and the record is
    /// reported as corrupt (naming the file and offset), never loaded from the predicted place.
    @Test func damagedHeadOfAPredictedRecordIsRefusedWithoutTheSidecar() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        let shape = [128, 600]
        let path = dir.path + "/ckpt"
        let (tensor, info) = try await Self.saveOne(shape: shape, seed: 78, path: path, engine: engine)
        // Break the first local header's signature.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path + "/" + info.relativePath))
        try handle.seek(toOffset: UInt64(info.offset))
        try handle.write(contentsOf: Data([0x50, 0x4B, 0x09, 0x09]))
        try handle.close()
        let out = TensorBuffer(byteCount: tensor.bytes.count)
        _ = try await onRanks(1) { comm in
            var request = StateDict()
            request.set("w", .tensor(.whole(dtype: .float32, shape: shape, buffer: out)))
            return try await Checkpointer(engine: engine, communicator: comm).load(into: request, from: path)
        }
        let same = Array(out.bytes) == tensor.bytes
        #expect(same, "the payload under a damaged head loads intact with the sidecar")
        try FileManager.default.removeItem(atPath: path + "/" + Checkpointer.checksumFileName)
        do {
            _ = try await onRanks(1) { comm in
                var request = StateDict()
                request.set("w", .tensor(.whole(dtype: .float32, shape: shape, buffer: out)))
                return try await Checkpointer(engine: engine, communicator: comm).load(into: request, from: path)
            }
            Issue.record("a damaged record head was loaded")
        } catch let error as CheckpointError {
            #expect(error.code == .corrupt, "\(error)")
            #expect(error.description.contains(info.relativePath) && error.description.contains("offset \(info.offset)"), "\(error)")
        }
    }
}
