import CkptFormat
import CkptIO
import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

/// PyTorch-written checkpoints load on other world sizes with other layouts, bit-exactly.
@Suite struct FixtureLoadTests {
    static let dcpFixtures = ["a_4rank_shard0", "b_2rank_shard1", "c_4rank_uneven_empty", "d_1rank_nested",
                              "e_2rank_safetensors", "g_lightning_fsdp_sharded"]

    @Test(arguments: dcpFixtures)
    func reshardedLoadMatchesManifest(name: String) async throws {
        let fixture = try #require(try Fixtures.manifest().first { $0.name == name })
        let dir = Fixtures.path(name)
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        for world in [1, 2, 3, 5] {
            var rng = SplitMix64(seed: UInt64(world * 7919 + name.count))
            // Every rank asks for a random grid of every tensor; values are requested too.
            let tensors = fixture.tensors
            let grids = tensors.map { RandomGrid.make(shape: $0.shape, ranks: world, rng: &rng) }
            let states: [StateDict] = (0..<world).map { rank in
                var state = StateDict()
                for (t, tensor) in tensors.enumerated() {
                    let dtype = DType(torchName: tensor.dtype) ?? .uint8
                    let chunks = grids[t][rank].map { box in
                        TensorChunk(offsets: box.offsets, sizes: box.sizes,
                                    buffer: TensorBuffer(byteCount: box.sizes.reduce(1, *) * dtype.itemSize))
                    }
                    state.set(tensor.fqn, .tensor(TensorEntry(dtype: dtype, globalShape: tensor.shape, chunks: chunks)))
                }
                return state
            }
            _ = try await onRanks(world) { comm in
                try await Checkpointer(engine: engine, communicator: comm, options: CheckpointOptions(direct: false))
                    .load(into: states[comm.rank], from: dir)
            }
            // Reassemble each global tensor from every rank's blocks and hash it.
            for tensor in tensors {
                let dtype = try #require(DType(torchName: tensor.dtype))
                var global = GlobalTensor(fqn: tensor.fqn, dtype: dtype, shape: tensor.shape, rng: &rng)
                for rank in 0..<world {
                    guard case .tensor(let entry)? = states[rank][tensor.fqn] else { continue }
                    for chunk in entry.chunks {
                        let bytes = Array(chunk.buffer.bytes)
                        global.forEachRow(offsets: chunk.offsets, sizes: chunk.sizes) { g, b, n in
                            for i in 0..<n { global.bytes[g + i] = bytes[b + i] }
                        }
                    }
                }
                #expect(SHA256.hex(global.bytes) == tensor.sha256, "\(name): \(tensor.fqn) loaded on \(world) ranks")
            }
        }
    }

    @Test func valuesOfNestedFixtureLoad() async throws {
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = Fixtures.path("d_1rank_nested")
        let metadata = try DCPMetadata(decoding: Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/.metadata"))))
        var state = StateDict()
        for (fqn, entry) in metadata.stateDictMetadata.entries {
            if case .bytes = entry { state.set(fqn, .value(.none)) }
        }
        let loaded = state
        let reports = try await onRanks(1) { comm in
            try await Checkpointer(engine: engine, communicator: comm).load(into: loaded, from: dir)
        }
        #expect(reports[0].values.count == state.count)
        #expect(reports[0].values["optim.param_groups.0.lr"] != nil)
    }
}
