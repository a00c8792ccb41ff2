import CkptFormat
import CkptIO
import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

/// Bad checkpoints and bad requests give clear errors, never a wrong tensor.
@Suite struct FailureTests {
    /// Saves a small 2-rank checkpoint (row shards of a [64, 33] float32 tensor and a value).
    static func saveSmall(_ dir: String, engine: IOEngine, seed: UInt64 = 1) async throws -> GlobalTensor {
        var rng = SplitMix64(seed: seed)
        let tensor = GlobalTensor(fqn: "model.w", dtype: .float32, shape: [64, 33], rng: &rng)
        let states: [StateDict] = (0..<2).map { rank in
            var s = StateDict()
            let box = (offsets: [rank * 32, 0], sizes: [32, 33])
            let buffer = TensorBuffer(byteCount: 32 * 33 * 4)
            buffer.bytes.copyBytes(from: tensor.block(offsets: box.offsets, sizes: box.sizes))
            s.set("model.w", .tensor(TensorEntry(dtype: .float32, globalShape: [64, 33], chunks: [
                TensorChunk(offsets: box.offsets, sizes: box.sizes, buffer: buffer),
            ])))
            s.set("step", .value(.int(5)))
            return s
        }
        _ = try await onRanks(2) { comm in
            try await Checkpointer(engine: engine, communicator: comm, options: CheckpointOptions(directPayloadThreshold: 1024))
                .save(states[comm.rank], to: dir)
        }
        return tensor
    }

    static func request(shape: [Int] = [64, 33], dtype: DType = .float32, fqn: String = "model.w") -> StateDict {
        var s = StateDict()
        s.set(fqn, .tensor(.whole(dtype: dtype, shape: shape, buffer: TensorBuffer(byteCount: shape.reduce(1, *) * dtype.itemSize))))
        return s
    }

    static func load(_ state: StateDict, from dir: String, engine: IOEngine, verify: Bool = false) async throws -> LoadReport {
        try await onRanks(1) { comm in
            try await Checkpointer(engine: engine, communicator: comm, options: CheckpointOptions(verifyChecksums: verify))
                .load(into: state, from: dir)
        }[0]
    }

    static func expectError(_ code: CheckpointError.Code, containing parts: [String], _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected a \(code) error")
        } catch let error as CheckpointError {
            #expect(error.code == code, "\(error)")
            for part in parts { #expect(error.description.contains(part), "'\(part)' not in: \(error)") }
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func missingMetadataIsAnIncompleteCheckpoint() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        _ = try await Self.saveSmall(dir.path, engine: engine)
        try FileManager.default.removeItem(atPath: dir.path + "/.metadata")
        await Self.expectError(.incompleteCheckpoint, containing: [".metadata", dir.path]) {
            _ = try await Self.load(Self.request(), from: dir.path, engine: engine)
        }
    }

    @Test func mismatchesSayWhatWasSavedAndAsked() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        _ = try await Self.saveSmall(dir.path, engine: engine)
        await Self.expectError(.mismatch, containing: ["model.w", "64, 33", "64, 32"]) {
            _ = try await Self.load(Self.request(shape: [64, 32]), from: dir.path, engine: engine)
        }
        await Self.expectError(.mismatch, containing: ["model.w", "float32", "bfloat16"]) {
            _ = try await Self.load(Self.request(dtype: .bfloat16), from: dir.path, engine: engine)
        }
        await Self.expectError(.mismatch, containing: ["model.nope"]) {
            _ = try await Self.load(Self.request(fqn: "model.nope"), from: dir.path, engine: engine)
        }
    }

    @Test func flippedBitIsNamedByChecksum() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        _ = try await Self.saveSmall(dir.path, engine: engine)
        // Flip one bit in the middle of rank 1's tensor payload (located through the sidecar).
        let md = try DCPMetadata(decoding: Array(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/.metadata"))))
        let info = try #require(md.storage(fqn: "model.w", offsets: [32, 0]))
        let sidecar = try ChecksumSidecar.decode(
            Array(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/" + Checkpointer.checksumFileName))), path: "sidecar")
        let entry = try #require(sidecar.entries.first { $0.fqn == "model.w" && $0.offsets == [32, 0] })
        let path = dir.path + "/" + info.relativePath
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[entry.payloadOffset + entry.payloadLength / 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        await Self.expectError(.corrupt, containing: ["checksum mismatch", "model.w", "[32, 0]", info.relativePath]) {
            _ = try await Self.load(Self.request(), from: dir.path, engine: engine, verify: true)
        }
    }

    @Test func truncatedAndMissingFilesAreNamed() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        _ = try await Self.saveSmall(dir.path, engine: engine)
        let path = dir.path + "/__1_0.distcp"
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        try original.prefix(original.count / 2).write(to: URL(fileURLWithPath: path))
        await Self.expectError(.corrupt, containing: ["__1_0.distcp", "truncated"]) {
            _ = try await Self.load(Self.request(), from: dir.path, engine: engine)
        }
        try FileManager.default.removeItem(atPath: path)
        await Self.expectError(.corrupt, containing: ["__1_0.distcp"]) {
            _ = try await Self.load(Self.request(), from: dir.path, engine: engine)
        }
    }

    @Test func swappedShardFilesAreDetected() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        _ = try await Self.saveSmall(dir.path, engine: engine)
        let a = dir.path + "/__0_0.distcp", b = dir.path + "/__1_0.distcp", t = dir.path + "/swap"
        try FileManager.default.moveItem(atPath: a, toPath: t)
        try FileManager.default.moveItem(atPath: b, toPath: a)
        try FileManager.default.moveItem(atPath: t, toPath: b)
        // Records no longer sit where the metadata says, or hold other bytes: either way named.
        await Self.expectError(.corrupt, containing: ["model.w", ".distcp"]) {
            _ = try await Self.load(Self.request(), from: dir.path, engine: engine, verify: true)
        }
    }

    @Test func saveRefusesToOverwriteACommittedCheckpoint() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        let first = try await Self.saveSmall(dir.path, engine: engine, seed: 1)
        await Self.expectError(.aborted, containing: ["already holds a committed checkpoint"]) {
            _ = try await Self.saveSmall(dir.path, engine: engine, seed: 2)
        }
        // The first checkpoint is intact.
        let state = Self.request()
        _ = try await Self.load(state, from: dir.path, engine: engine, verify: true)
        guard case .tensor(let entry)? = state["model.w"] else { Issue.record("no tensor"); return }
        #expect(Array(entry.chunks[0].buffer.bytes) == first.bytes)
    }

    @Test func aFailingRankAbortsTheSaveOnEveryRankWithoutCommitting() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        let results = try await onRanks(3) { comm -> String in
            var s = StateDict()
            // Rank 2 lends a buffer too small for its chunk.
            let bytes = comm.rank == 2 ? 8 : 10 * 4
            s.set("w", .tensor(TensorEntry(dtype: .float32, globalShape: [30], chunks: [
                TensorChunk(offsets: [comm.rank * 10], sizes: [10], buffer: TensorBuffer(byteCount: bytes)),
            ])))
            do {
                _ = try await Checkpointer(engine: engine, communicator: comm).save(s, to: dir.path)
                return "saved"
            } catch {
                return "\(error)"
            }
        }
        #expect(results[2].contains("chunk at [20] needs 40 bytes"), "\(results[2])")
        for r in results[0..<2] { #expect(r.contains("rank 2") && r.contains("chunk at [20]"), "\(r)") }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/.metadata"))
    }

    @Test func asyncSaveReturnsAfterStagingAndCommitsTheStagedState() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        var rng = SplitMix64(seed: 9)
        let tensor = GlobalTensor(fqn: "w", dtype: .bfloat16, shape: [300, 70], rng: &rng)
        let buffer = TensorBuffer(byteCount: tensor.bytes.count)
        buffer.bytes.copyBytes(from: tensor.bytes)
        var state = StateDict()
        state.set("w", .tensor(.whole(dtype: .bfloat16, shape: [300, 70], buffer: buffer)))
        let saved = state
        let handles = try await onRanks(1) { comm in
            try await Checkpointer(engine: engine, communicator: comm).saveAsync(saved, to: dir.path + "/step1")
        }
        // Training goes on: the caller's memory changes right after staging.
        buffer.bytes.initializeMemory(as: UInt8.self, repeating: 0xAB)
        #expect(handles[0].stagedBytes >= tensor.bytes.count)
        _ = try await handles[0].wait()
        var request = StateDict()
        let out = TensorBuffer(byteCount: tensor.bytes.count)
        request.set("w", .tensor(.whole(dtype: .bfloat16, shape: [300, 70], buffer: out)))
        _ = try await Self.load(request, from: dir.path + "/step1", engine: engine, verify: true)
        #expect(Array(out.bytes) == tensor.bytes)
    }

    @Test func reservedAsyncStagingIsReusedByEverySave() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        var rng = SplitMix64(seed: 11)
        let tensor = GlobalTensor(fqn: "w", dtype: .float32, shape: [129, 33], rng: &rng)
        let buffer = TensorBuffer(byteCount: tensor.bytes.count)
        buffer.bytes.copyBytes(from: tensor.bytes)
        var state = StateDict()
        state.set("w", .tensor(.whole(dtype: .float32, shape: [129, 33], buffer: buffer)))
        let saved = state
        let reports = try await onRanks(1) { comm -> [Int] in
            let checkpointer = Checkpointer(engine: engine, communicator: comm)
            let reserved = checkpointer.reserveAsyncStaging(for: saved)
            var staged: [Int] = [reserved]
            for step in 0..<2 {
                let handle = try await checkpointer.saveAsync(saved, to: dir.path + "/step\(step)")
                staged.append(handle.stagedBytes)
                _ = try await handle.wait()
            }
            // Reserving again for the same shape keeps the arena.
            staged.append(checkpointer.reserveAsyncStaging(for: saved))
            return staged
        }
        let expected = (tensor.bytes.count + 4095) / 4096 * 4096
        #expect(reports[0] == [expected, expected, expected, expected])
        for step in 0..<2 {
            var request = StateDict()
            let out = TensorBuffer(byteCount: tensor.bytes.count)
            request.set("w", .tensor(.whole(dtype: .float32, shape: [129, 33], buffer: out)))
            _ = try await Self.load(request, from: dir.path + "/step\(step)", engine: engine, verify: true)
            #expect(Array(out.bytes) == tensor.bytes)
        }
    }

    @Test func asyncSaveErrorsReachTheHandle() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        _ = try await Self.saveSmall(dir.path, engine: engine)
        var state = StateDict()
        state.set("x", .value(.int(1)))
        let s = state
        let handles = try await onRanks(1) { comm in
            try await Checkpointer(engine: engine, communicator: comm).saveAsync(s, to: dir.path)
        }
        await #expect(throws: CheckpointError.self) { _ = try await handles[0].wait() }
    }
}
