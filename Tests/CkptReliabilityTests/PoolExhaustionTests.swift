import Ckpt
import CkptIO
import CkptTestSupport
import Foundation
import Testing

/// More concurrent data-file writers than the buffer pool can stage for.
@Suite struct PoolExhaustionTests {
    /// 8 in-process ranks share an engine with 4 buffers: far more writers than buffers. Staging
    /// writes release their buffer as soon as the kernel is done with it, so writers waiting for
    /// a buffer never sit on finished ones (this deadlocked before that fix).
    @Test func manyWritersOnASmallPoolFinish() async throws {
        let engine = try makeEngine(bufferSize: 64 << 10, bufferCount: 4)
        let dir = ScratchDir("ckpt-pool", fast: true)
        defer { dir.cleanup() }
        try await saveRecipeWithin(20, dir.path + "/s", seed: 3, rows: 2048, ranks: 8, engine: engine)
    }

    /// The same writers with a pool large enough for two buffers each: completes.
    @Test func manyWritersOnAnAmplePoolFinish() async throws {
        let engine = try makeEngine(bufferSize: 64 << 10, bufferCount: 32)
        let dir = ScratchDir("ckpt-pool", fast: true)
        defer { dir.cleanup() }
        try await saveRecipeWithin(60, dir.path + "/s", seed: 3, rows: 2048, ranks: 8, engine: engine)
        let outcome = await loadAndCompare(dir.path + "/s", seed: 3, rows: 2048, engine: engine, verifyChecksums: true)
        if case .matches = outcome {} else { Issue.record("\(outcome)") }
        #expect(engine.buffers.heldBytes == 0)
        await engine.shutdown()
    }
}

func saveRecipeWithin(_ seconds: Double, _ directory: String, seed: UInt64, rows: Int, ranks: Int, engine: IOEngine) async throws {
    let states = (0..<ranks).map { CrashRecipe.state(seed: seed, rows: rows, rank: $0, ranks: ranks) }
    _ = try await withTimeout(seconds, "save of \(ranks) ranks") {
        try await onRanks(ranks) { comm in
            try await Checkpointer(engine: engine, communicator: comm, options: CheckpointOptions(directPayloadThreshold: 64 << 10))
                .save(states[comm.rank], to: directory)
        }
    }
}
