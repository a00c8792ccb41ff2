import Testing

@testable import CkptPlan

/// Planning cost on large layouts. No timing assertions (CI machines vary): the times are printed,
/// and the plans are checked for the expected shape so the work cannot be skipped.
@Suite struct PerformanceTests {
    /// An 80 x 125 mesh of [64, 32] chunks (10k saved chunks of a [5120, 4000] float32 tensor),
    /// saved by 8 ranks, loaded as 8 row shards.
    @Test func tenThousandSavedChunksOnEightRanks() throws {
        let clock = ContinuousClock()
        let shape = [5120, 4000]
        var chunks: [ChunkBox] = []
        var rankItems = [[SaveItem]](repeating: [], count: 8)
        for row in 0..<80 {
            for column in 0..<125 {
                let chunk = ChunkBox(offsets: [row * 64, column * 32], sizes: [64, 32])
                chunks.append(chunk)
                rankItems[(row * 125 + column) % 8].append(
                    .tensor(TensorWriteItem(fqn: "w", globalShape: shape, elementSize: 4, dtype: "float32", chunk: chunk)))
            }
        }
        let saveStart = clock.now
        let savePlan = try SavePlanner.plan(ranks: rankItems)
        let saveTime = clock.now - saveStart
        guard case .tensor(let model) = savePlan.metadata.first?.kind else {
            Issue.record("no tensor entry")
            return
        }
        #expect(model.chunks.count == 10_000)

        // Payloads: each rank's chunks back to back in its file, 1577-byte records.
        var payloads: [Int: PayloadLocation] = [:]
        var fileOffsets = [Int](repeating: 0, count: 8)
        for (index, chunk) in model.chunks.enumerated() {
            let rank = chunk.writer.rank
            payloads[index] = PayloadLocation(file: rank, offset: fileOffsets[rank] + 1577, length: 8192)
            fileOffsets[rank] += 1577 + 8192
        }
        let saved = SavedEntry.tensor(
            SavedTensorLayout(globalShape: shape, elementSize: 4, dtype: "float32", chunks: model.chunks.map(\.box)))

        let loadStart = clock.now
        var runs = 0
        var reads = 0
        for rank in 0..<8 {
            let request = TensorLoadRequest(
                fqn: "w", globalShape: shape, elementSize: 4, dtype: "float32",
                localChunks: [LocalChunk(box: ChunkBox(offsets: [rank * 640, 0], sizes: [640, 4000]), destination: 0)])
            let plan = try LoadPlanner.planOverlaps(request, saved: saved)
            #expect(plan.neededSavedChunks.count == 1250)
            let needed = Dictionary(uniqueKeysWithValues: plan.neededSavedChunks.map { ($0, payloads[$0]!) })
            let readPlan = try LoadPlanner.planReads(tensors: [TensorReadSource(plan: plan, payloads: needed)])
            #expect(readPlan.readBytes == readPlan.neededBytes)
            runs += readPlan.runCount
            reads += readPlan.readCount
        }
        let loadTime = clock.now - loadStart
        // One run per row of each [64, 32] intersection; one read per saved chunk.
        #expect(runs == 8 * 1250 * 64)
        #expect(reads == 10_000)
        print("plan 10k chunks: save (dedup+metadata+validation) \(saveTime), load on 8 ranks \(loadTime): \(runs) runs, \(reads) reads")
    }

    /// 10k row shards of one tensor loaded as 8 row shards: one direct read per overlap.
    @Test func tenThousandRowShardsOnEightRanks() throws {
        let clock = ContinuousClock()
        let shape = [100_000, 1024]
        let chunks = (0..<10_000).map { ChunkBox(offsets: [$0 * 10, 0], sizes: [10, 1024]) }
        let saved = SavedEntry.tensor(SavedTensorLayout(globalShape: shape, elementSize: 2, dtype: "bfloat16", chunks: chunks))
        var payloads: [Int: PayloadLocation] = [:]
        for index in chunks.indices {
            payloads[index] = PayloadLocation(file: index % 16, offset: (index / 16) * 30_000 + 1000, length: 20_480)
        }
        let start = clock.now
        var reads = 0
        for rank in 0..<8 {
            let request = TensorLoadRequest(
                fqn: "w", globalShape: shape, elementSize: 2, dtype: "bfloat16",
                localChunks: [LocalChunk(box: ChunkBox(offsets: [rank * 12_500, 0], sizes: [12_500, 1024]), destination: rank)])
            let plan = try LoadPlanner.planOverlaps(request, saved: saved)
            let readPlan = try LoadPlanner.planReads(tensors: [TensorReadSource(plan: plan, payloads: payloads)])
            #expect(readPlan.files.allSatisfy { file in file.reads.allSatisfy { $0.isDirect } })
            #expect(readPlan.readBytes == 12_500 * 1024 * 2)
            reads += readPlan.readCount
        }
        #expect(reads == 10_000)
        print("plan 10k row shards on 8 ranks: \(clock.now - start), \(reads) reads")
    }
}
