import CkptFormat
import CkptIO
import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

/// `.ckpt-index`: every save writes the binary form of its `.metadata` and sidecar; loads use it
/// only while it matches those files byte for byte, and otherwise decode the files as before, with
/// the same result. A hostile index that claims to match is an error naming it.
@Suite struct CommittedIndexTests {
    static let tensors: [GlobalTensor] = {
        var rng = SplitMix64(seed: 77)
        return [("w", [37, 19]), ("b", [19]), ("m", [64, 33])].map {
            GlobalTensor(fqn: $0.0, dtype: .float32, shape: $0.1, rng: &rng)
        }
    }()

    /// Saves `tensors` (row shards over `ranks`) with a step counter value into `path`.
    static func save(_ path: String, ranks: Int, step: Int, engine: IOEngine) async throws {
        _ = try await onRanks(ranks) { comm in
            var state = StateDict()
            for t in Self.tensors {
                state.set(t.fqn, .tensor(t.rowShard(comm.rank, of: ranks)))
            }
            state.set("step", .value(.int(Int64(step))))
            return try await Checkpointer(engine: engine, communicator: comm).save(state, to: path)
        }
    }

    /// Loads everything whole on each of `ranks` ranks (checking every byte and the step); returns
    /// whether each rank's metadata came from the index.
    static func load(_ path: String, ranks: Int, step: Int, engine: IOEngine, verify: Bool = true) async throws -> [Bool] {
        let reports = try await onRanks(ranks) { comm in
            var state = StateDict()
            var buffers: [TensorBuffer] = []
            for t in Self.tensors {
                let buffer = TensorBuffer(byteCount: t.bytes.count)
                buffers.append(buffer)
                state.set(t.fqn, .tensor(.whole(dtype: .float32, shape: t.shape, buffer: buffer)))
            }
            state.set("step", .value(.none))
            let report = try await Checkpointer(
                engine: engine, communicator: comm, options: CheckpointOptions(verifyChecksums: verify)
            ).load(into: state, from: path)
            for (t, buffer) in zip(Self.tensors, buffers) {
                #expect(Array(buffer.bytes) == t.bytes, "\(t.fqn) on rank \(comm.rank)")
            }
            #expect(report.values["step"] == .int(Int64(step)))
            return report.metadataFromIndex
        }
        return reports
    }

    static func read(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
    static func write(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    @Test func savesWriteAnIndexThatLoadsUseAndThatMatchesTheFiles() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        let path = dir.path + "/ckpt"
        try await Self.save(path, ranks: 2, step: 5, engine: engine)
        let index = try Self.read(path + "/" + CommittedIndex.fileName)
        let metadata = try Self.read(path + "/.metadata")
        let sidecar = try Self.read(path + "/" + Checkpointer.checksumFileName)

        // The index holds exactly what decoding the files gives.
        let message = try #require(CommittedIndex.message(in: index, metadata: metadata, sidecar: sidecar))
        let fromIndex = try Checkpointer.committed(
            [CommittedSource.index.rawValue] + message, directory: path, verify: true)
        let fromFiles = try await Checkpointer.decodeCommitted(
            .init(metadata: metadata, sidecar: sidecar, index: []), directory: path, verify: true)
        #expect(fromIndex.metadata == fromFiles.0)
        #expect(fromIndex.sidecar == fromFiles.1)
        #expect(fromIndex.fromIndex)

        for ranks in [1, 2, 3] {
            #expect(try await Self.load(path, ranks: ranks, step: 5, engine: engine) == Array(repeating: true, count: ranks))
            #expect(try await Self.load(path, ranks: ranks, step: 5, engine: engine, verify: false) == Array(repeating: true, count: ranks))
        }
        #expect(try await CheckpointReader(directory: path, engine: engine).metadataFromIndex)
        await engine.shutdown()
    }

    /// A huge file named `.ckpt-index` is not read into memory.
    @Test func onlyAnIndexOfPlausibleSizeIsRead() {
        #expect(CommittedIndex.plausibleSize(100_000, metadata: 400_000, sidecar: 400_000))
        #expect(CommittedIndex.plausibleSize(1 << 20, metadata: 1000, sidecar: nil))
        #expect(!CommittedIndex.plausibleSize((1 << 20) + 2001, metadata: 1000, sidecar: nil))
        #expect(!CommittedIndex.plausibleSize(10 << 30, metadata: 400_000, sidecar: 400_000))
        #expect(!CommittedIndex.plausibleSize(nil, metadata: 1000, sidecar: 1000))
        #expect(!CommittedIndex.plausibleSize(100, metadata: nil, sidecar: 1000))
        #expect(!CommittedIndex.plausibleSize(CommittedIndex.headerSize - 1, metadata: 1000, sidecar: 1000))
    }

    /// Every way the index can fail to belong to the files sends the load down the pickle path,
    /// with the same tensors.
    @Test func anIndexThatDoesNotMatchIsIgnored() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        let path = dir.path + "/ckpt", other = dir.path + "/other"
        try await Self.save(path, ranks: 2, step: 5, engine: engine)
        try await Self.save(other, ranks: 2, step: 6, engine: engine)
        let indexPath = path + "/" + CommittedIndex.fileName
        let good = try Self.read(indexPath)
        let header = CommittedIndex.headerSize
        var damaged: [(String, [UInt8]?)] = [
            ("missing", nil), ("empty", []), ("truncated header", Array(good.prefix(header - 1))),
            ("truncated body", Array(good.dropLast())), ("longer", good + [0]),
            ("another save's", try Self.read(other + "/" + CommittedIndex.fileName)),
            ("oversized (not read)", good + [UInt8](repeating: 0, count: 3 << 20)),
        ]
        // One flipped byte anywhere: the magic, each header field, the wire header, the body.
        for at in [0, 8, 16, 24, 32, 40, 48, header, header + 3, header + 9, good.count / 2, good.count - 1] {
            var bytes = good
            bytes[at] ^= 0x20
            damaged.append(("byte \(at) flipped", bytes))
        }
        for (what, bytes) in damaged {
            if let bytes { try Self.write(bytes, indexPath) } else { unlink(indexPath) }
            #expect(try await Self.load(path, ranks: 2, step: 5, engine: engine) == [false, false], "\(what)")
            #expect(try await !CheckpointReader(directory: path, engine: engine).metadataFromIndex, "\(what)")
            #expect(try await CheckpointInspection.inspect(path, engine: engine).index == (bytes == nil ? "none" : "stale"), "\(what)")
        }
        // `.metadata` or the sidecar replaced by another save's (as when PyTorch saves into the
        // directory and leaves ours behind): the index no longer matches.
        try Self.write(good, indexPath)
        #expect(try await Self.load(path, ranks: 2, step: 5, engine: engine) == [true, true])
        #expect(try await CheckpointInspection.inspect(path, engine: engine).index == "current")
        try FileManager.default.removeItem(atPath: path + "/" + Checkpointer.checksumFileName)
        #expect(try await Self.load(path, ranks: 2, step: 5, engine: engine, verify: false) == [false, false])
        await engine.shutdown()
    }

    /// An index whose header matches the files but whose body is not a valid message (only a
    /// crafted file can be that) fails the load on every rank with an error naming it.
    @Test func aCraftedIndexIsAnErrorNamingIt() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine()
        let path = dir.path + "/ckpt"
        try await Self.save(path, ranks: 2, step: 5, engine: engine)
        let metadata = try Self.read(path + "/.metadata")
        let sidecar = try Self.read(path + "/" + Checkpointer.checksumFileName)
        let good = try Self.read(path + "/" + CommittedIndex.fileName)
        let body = Array(good[CommittedIndex.headerSize...])
        for cut in [4, 5, 40, body.count / 2, body.count - 1] {
            let crafted = CommittedIndex.encode(metadata: metadata, sidecar: sidecar, message: Array(body.prefix(cut)))
            try Self.write(crafted, path + "/" + CommittedIndex.fileName)
            let errors = try await onRanks(2) { comm in
                do {
                    var state = StateDict()
                    state.set("step", .value(.none))
                    _ = try await Checkpointer(engine: engine, communicator: comm).load(into: state, from: path)
                    return nil as CheckpointError?
                } catch let error as CheckpointError {
                    return error
                }
            }
            for error in errors {
                let error = try #require(error, "body cut at \(cut)")
                #expect(error.code == .corrupt)
                #expect(error.message.contains(CommittedIndex.fileName), "\(error)")
            }
        }
        await engine.shutdown()
    }
}
