import CkptFormat
import CkptIO
import CkptPlan
import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

/// Helpers of the tool tests.
enum ToolTest {
    static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// Entries of `dir` (hidden files included).
    static func listing(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// fqn (path keys joined with ".") -> (dtype, shape, sha256) of every tensor of a torch.save file.
    static func torchSaveTensors(_ path: String) throws -> [String: (dtype: DType, shape: [Int], sha: String)] {
        let data = try bytes(path)
        // Every zip entry's CRC-32 holds (torch.load does not check them; zip tools do).
        let archive = try ZipArchive(parsing: data)
        try data.withUnsafeBytes { raw in
            for entry in archive.entries { try ZipArchive.verifyCRC(entry, in: raw) }
        }
        let file = try TorchSaveFile(parsing: data)
        var out: [String: (dtype: DType, shape: [Int], sha: String)] = [:]
        for (keys, t) in file.value.tensors() {
            let fqn = keys.map { key -> String in
                switch key {
                case .string(let s): return s
                case .int(let i): return String(i)
                default: return "?"
                }
            }.joined(separator: ".")
            let storage = try #require(file.storage(t.storageKey))
            let start = storage.byteRange.lowerBound + t.storageOffset * t.dtype.itemSize
            out[fqn] = (t.dtype, t.shape, SHA256.hex(data[start..<(start + t.elementCount * t.dtype.itemSize)]))
        }
        return out
    }

    /// fqn -> sha256 of every tensor of a checkpoint, loaded whole through CheckpointReader.
    static func checkpointTensors(_ dir: String, engine: IOEngine) async throws -> [String: (dtype: DType, shape: [Int], sha: String)] {
        let reader = try await CheckpointReader(directory: dir, engine: engine)
        var state = StateDict()
        var buffers: [String: (DType, [Int], TensorBuffer)] = [:]
        for (fqn, entry) in reader.metadata.stateDictMetadata.entries {
            guard case .tensor(let t) = entry else { continue }
            let buffer = TensorBuffer(byteCount: t.size.reduce(1, *) * t.properties.dtype.itemSize)
            buffers[fqn] = (t.properties.dtype, t.size, buffer)
            state.set(fqn, .tensor(.whole(dtype: t.properties.dtype, shape: t.size, buffer: buffer)))
        }
        _ = try await reader.load(into: state)
        return buffers.mapValues { ($0.0, $0.1, SHA256.hex(Array($0.2.bytes))) }
    }

    /// Values of a checkpoint.
    static func checkpointValues(_ dir: String, engine: IOEngine) async throws -> [String: TorchValue] {
        let reader = try await CheckpointReader(directory: dir, engine: engine)
        var state = StateDict()
        for (fqn, entry) in reader.metadata.stateDictMetadata.entries {
            if case .bytes = entry { state.set(fqn, .value(.none)) }
        }
        return state.count == 0 ? [:] : try await reader.load(into: state).values
    }

    static func expectMatchesManifest(_ got: [String: (dtype: DType, shape: [Int], sha: String)], fixture name: String) throws {
        let fixture = try #require(try Fixtures.manifest().first { $0.name == name })
        #expect(got.count == fixture.tensors.count, "\(name): tensor count")
        for t in fixture.tensors {
            let g = try #require(got[t.fqn], "\(name): \(t.fqn) missing")
            #expect(g.dtype.torchName == t.dtype && g.shape == t.shape, "\(name): \(t.fqn) dtype/shape")
            #expect(g.sha == t.sha256, "\(name): \(t.fqn) content")
        }
    }

    /// A checkpoint written by the engine on `world` ranks (random row/column grids, random
    /// tensors of a few dtypes, two values); returns the global tensors.
    static func engineCheckpoint(
        _ dir: String, world: Int, seed: UInt64, engine: IOEngine, big: Bool = false
    ) async throws -> [String: GlobalTensor] {
        var rng = SplitMix64(seed: seed)
        var specs: [(String, DType, [Int])] = [
            ("model.w", .float32, [37, 9]), ("model.b", .bfloat16, [11]), ("model.s", .float64, []),
            ("model.empty", .float32, [0, 3]), ("opt.m", .int64, [5, 2, 3]),
        ]
        if big { specs.append(("model.big", .float32, [1024, 1024])) }  // 4 MiB
        var tensors: [String: GlobalTensor] = [:]
        var grids: [String: [[(offsets: [Int], sizes: [Int])]]] = [:]
        for (fqn, dtype, shape) in specs {
            tensors[fqn] = GlobalTensor(fqn: fqn, dtype: dtype, shape: shape, rng: &rng)
            grids[fqn] = RandomGrid.make(shape: shape, ranks: world, rng: &rng)
        }
        let states: [StateDict] = (0..<world).map { rank in
            var state = StateDict()
            for (fqn, _, _) in specs {
                guard let t = tensors[fqn], let grid = grids[fqn] else { continue }
                let chunks = grid[rank].map { box -> TensorChunk in
                    let block = t.block(offsets: box.offsets, sizes: box.sizes)
                    let buffer = TensorBuffer(byteCount: block.count)
                    buffer.bytes.copyBytes(from: block)
                    return TensorChunk(offsets: box.offsets, sizes: box.sizes, buffer: buffer)
                }
                let path = fqn.split(separator: ".").map { PathElement.key(String($0)) }
                state.set(fqn, path: path, .tensor(TensorEntry(dtype: t.dtype, globalShape: t.shape, chunks: chunks)))
            }
            state.set("extra.step", path: [.key("extra"), .key("step")], .value(.int(42)))
            state.set("extra.name", path: [.key("extra"), .key("name")], .value(.string("run-7")))
            return state
        }
        _ = try await onRanks(world) { comm in
            try await Checkpointer(engine: engine, communicator: comm, options: CheckpointOptions(direct: false))
                .save(states[comm.rank], to: dir)
        }
        return tensors
    }

    static func expectMatches(_ got: [String: (dtype: DType, shape: [Int], sha: String)], _ tensors: [String: GlobalTensor]) throws {
        #expect(got.count == tensors.count)
        for (fqn, t) in tensors {
            let g = try #require(got[fqn], "\(fqn) missing")
            #expect(g.dtype == t.dtype && g.shape == t.shape, "\(fqn) dtype/shape")
            #expect(g.sha == SHA256.hex(t.bytes), "\(fqn) content")
        }
    }

    /// Flips one bit of a file at `offset`.
    static func flipBit(_ path: String, at offset: Int) throws {
        var data = try bytes(path)
        data[offset] ^= 0x10
        try Data(data).write(to: URL(fileURLWithPath: path))
    }

    static func truncate(_ path: String, by n: Int) throws {
        let data = try bytes(path)
        try Data(data[..<(data.count - n)]).write(to: URL(fileURLWithPath: path))
    }

    static func copyFixture(_ name: String, to dir: String) throws -> String {
        let target = dir + "/" + name
        try FileManager.default.copyItem(atPath: Fixtures.path(name), toPath: target)
        return target
    }
}
