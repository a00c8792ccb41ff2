import Testing

@testable import CkptPlan

func box(_ offsets: [Int], _ sizes: [Int]) -> ChunkBox { ChunkBox(offsets: offsets, sizes: sizes) }

func layout(_ shape: [Int], _ chunks: [ChunkBox], elementSize: Int = 4, dtype: String = "float32") -> SavedEntry {
    .tensor(SavedTensorLayout(globalShape: shape, elementSize: elementSize, dtype: dtype, chunks: chunks))
}

func request(_ shape: [Int], _ locals: [ChunkBox], fqn: String = "w", elementSize: Int = 4, dtype: String = "float32")
    -> TensorLoadRequest
{
    TensorLoadRequest(
        fqn: fqn, globalShape: shape, elementSize: elementSize, dtype: dtype,
        localChunks: locals.enumerated().map { LocalChunk(box: $0.element, destination: $0.offset) })
}

/// Payloads laid out back to back in file 0 with a 100-byte header before each.
func payloads(_ saved: SavedEntry) -> [Int: PayloadLocation] {
    guard case .tensor(let layout) = saved else { return [:] }
    var result: [Int: PayloadLocation] = [:]
    var offset = 0
    for (index, chunk) in layout.chunks.enumerated() {
        offset += 100
        let length = (chunk.volume ?? 0) * layout.elementSize
        result[index] = PayloadLocation(file: 0, offset: offset, length: length)
        offset += length
    }
    return result
}

func readPlan(_ saved: SavedEntry, _ request: TensorLoadRequest, options: ReadPlanOptions = ReadPlanOptions()) throws
    -> (TensorOverlapPlan, ReadPlan)
{
    let plan = try LoadPlanner.planOverlaps(request, saved: saved)
    let reads = try LoadPlanner.planReads(
        tensors: [TensorReadSource(plan: plan, payloads: payloads(saved))], options: options)
    return (plan, reads)
}

@Suite struct LoadPlannerTests {
    @Test func rowShardToRowShardIsOneDirectRunPerOverlap() throws {
        let saved = layout([8, 4], [box([0, 0], [4, 4]), box([4, 0], [4, 4])])
        let (plan, reads) = try readPlan(saved, request([8, 4], [box([2, 0], [4, 4])]))
        #expect(plan.neededSavedChunks == [0, 1])
        #expect(plan.overlaps.map(\.lengths) == [[2, 4], [2, 4]])
        #expect(plan.overlaps.map(\.storageOffsets) == [[2, 0], [0, 0]])
        #expect(plan.overlaps.map(\.destinationOffsets) == [[0, 0], [2, 0]])
        let runs0 = LoadPlanner.copyRuns(for: plan.overlaps[0], in: plan, payload: payloads(saved)[0]!)
        #expect(runs0 == [CopyRun(file: 0, sourceOffset: 100 + 32, destination: 0, destinationOffset: 0, length: 32)])
        #expect(reads.runCount == 2)
        #expect(reads.files.count == 1)
        #expect(reads.files[0].reads.map(\.offset) == [132, 264])
        #expect(reads.files[0].reads.allSatisfy { $0.isDirect })
        #expect(reads.files[0].reads[1].scatter == [ScatterEntry(bufferOffset: 0, destination: 0, destinationOffset: 32, length: 32)])
        #expect(reads.neededBytes == 64 && reads.readBytes == 64)
    }

    @Test func columnShardsGiveOneRunPerRowAndCoalesceInTheSource() throws {
        // Saved as two column shards of [4, 6]; loaded as a row shard of the top two rows.
        let saved = layout([4, 6], [box([0, 0], [4, 3]), box([0, 3], [4, 3])])
        let (plan, reads) = try readPlan(saved, request([4, 6], [box([0, 0], [2, 6])]))
        #expect(reads.runCount == 4)
        let runs = LoadPlanner.copyRuns(for: plan.overlaps[1], in: plan, payload: payloads(saved)[1]!)
        // Chunk 1 payload at 100 + 48 + 100 = 248; rows of 12 bytes land at columns 3..5 of each 24-byte row.
        #expect(
            runs == [
                CopyRun(file: 0, sourceOffset: 248, destination: 0, destinationOffset: 12, length: 12),
                CopyRun(file: 0, sourceOffset: 260, destination: 0, destinationOffset: 36, length: 12),
            ])
        // The two rows of each saved chunk are adjacent in the file: one read per chunk, two scatters.
        #expect(reads.files[0].reads.map(\.length) == [24, 24])
        #expect(reads.files[0].reads.map(\.scatter.count) == [2, 2])
        #expect(!reads.files[0].reads[0].isDirect)
    }

    @Test func twoDimensionalMeshIntersection() throws {
        let saved = layout(
            [4, 4], [box([0, 0], [2, 2]), box([0, 2], [2, 2]), box([2, 0], [2, 2]), box([2, 2], [2, 2])],
            elementSize: 2, dtype: "bfloat16")
        let (plan, reads) = try readPlan(saved, request([4, 4], [box([1, 1], [2, 2])], elementSize: 2, dtype: "bfloat16"))
        #expect(plan.neededSavedChunks == [0, 1, 2, 3])
        #expect(plan.overlaps.allSatisfy { $0.lengths == [1, 1] })
        #expect(reads.runCount == 4 && reads.readBytes == 8 && reads.neededBytes == 8)
        // Chunk 0 holds global (1,1) at its last element: payload 100 + 3 * 2.
        #expect(reads.files[0].reads[0] == PlannedRead(offset: 106, length: 2, scatter: [ScatterEntry(bufferOffset: 0, destination: 0, destinationOffset: 0, length: 2)]))
    }

    @Test func zeroDimensionalTensor() throws {
        let saved = layout([], [box([], [])], elementSize: 8, dtype: "int64")
        let (plan, reads) = try readPlan(saved, request([], [box([], []), box([], [])], elementSize: 8, dtype: "int64"))
        #expect(plan.overlaps.count == 2)
        #expect(reads.files[0].reads == [
            PlannedRead(offset: 100, length: 8, scatter: [
                ScatterEntry(bufferOffset: 0, destination: 0, destinationOffset: 0, length: 8),
                ScatterEntry(bufferOffset: 0, destination: 1, destinationOffset: 0, length: 8),
            ])
        ])
        #expect(reads.neededBytes == 16 && reads.readBytes == 8)
    }

    @Test func emptyRequestsAndEmptyTensors() throws {
        let saved = layout([0, 4], [box([0, 0], [0, 4])])
        let (plan, reads) = try readPlan(saved, request([0, 4], [box([0, 0], [0, 4])]))
        #expect(plan.overlaps.isEmpty && plan.neededSavedChunks.isEmpty && reads.readCount == 0)
        let rows = layout([4], [box([0], [2]), box([2], [2]), box([4], [0])])
        let (rowPlan, _) = try readPlan(rows, request([4], [box([4], [0]), box([1], [2])]))
        #expect(rowPlan.neededSavedChunks == [0, 1])
    }

    @Test func gapBudgetBridgesSmallestGapsFirst() throws {
        // One saved [100, 10] byte chunk; the rank wants columns 0..<9: 100 runs of 9 bytes with
        // 1-byte gaps. 1 % of 900 needed bytes = 9 gap bytes: 9 gaps bridged, 91 reads.
        let saved = layout([100, 10], [box([0, 0], [100, 10])], elementSize: 1, dtype: "uint8")
        let wanted = request([100, 10], [box([0, 0], [100, 9])], elementSize: 1, dtype: "uint8")
        let (_, reads) = try readPlan(saved, wanted)
        #expect(reads.neededBytes == 900)
        #expect(reads.readBytes == 909)
        #expect(reads.readCount == 91)
        let (_, generous) = try readPlan(saved, wanted, options: ReadPlanOptions(gapBudgetFraction: 0.2))
        #expect(generous.readCount == 1 && generous.readBytes == 999)
        #expect(generous.files[0].reads[0].scatter.count == 100)
        let (_, none) = try readPlan(saved, wanted, options: ReadPlanOptions(gapBudgetFraction: 0))
        #expect(none.readCount == 100 && none.readBytes == 900)
        let (_, capped) = try readPlan(saved, wanted, options: ReadPlanOptions(gapBudgetFraction: 0.2, maxReadSize: 100))
        #expect(capped.files[0].reads.allSatisfy { $0.length <= 100 })
        #expect(capped.readBytes <= 999)
    }

    @Test func maxReadSizeSplitsLongRunsIntoDirectReads() throws {
        let saved = layout([1000], [box([0], [1000])], elementSize: 1, dtype: "uint8")
        let wanted = TensorLoadRequest(
            fqn: "w", globalShape: [1000], elementSize: 1, dtype: "uint8",
            localChunks: [LocalChunk(box: box([0], [1000]), destination: 7, baseOffset: 64)])
        let (_, reads) = try readPlan(saved, wanted, options: ReadPlanOptions(maxReadSize: 300))
        #expect(reads.files[0].reads.map(\.length) == [300, 300, 300, 100])
        #expect(reads.files[0].reads.allSatisfy { $0.isDirect })
        #expect(reads.files[0].reads.map { $0.scatter[0].destinationOffset } == [64, 364, 664, 964])
        #expect(reads.files[0].reads.map(\.offset) == [100, 400, 700, 1000])
    }

    @Test func bytesItemsAreReadWhole() throws {
        let reads = try LoadPlanner.planReads(
            tensors: [], bytes: [BytesReadRequest(fqn: "epoch", file: 3, offset: 1261, length: 1261, destination: 9)])
        #expect(reads.files == [
            FileReadPlan(file: 3, reads: [
                PlannedRead(offset: 1261, length: 1261, scatter: [ScatterEntry(bufferOffset: 0, destination: 9, destinationOffset: 0, length: 1261)])
            ])
        ])
        #expect(reads.files[0].reads[0].isDirect)
        #expect(reads.neededBytes == 1261 && reads.readBytes == 1261)
        #expect(throws: LoadPlanError.missingInCheckpoint(fqn: "epoch")) {
            try LoadPlanner.checkBytesRequest(fqn: "epoch", saved: nil)
        }
        #expect(throws: LoadPlanError.kindMismatch(fqn: "w", saved: "tensor of shape [2] (float32)", requested: "non-tensor value")) {
            try LoadPlanner.checkBytesRequest(fqn: "w", saved: layout([2], [box([0], [2])]))
        }
        #expect(throws: Never.self) { try LoadPlanner.checkBytesRequest(fqn: "epoch", saved: .bytes) }
        #expect(throws: LoadPlanError.invalidBytesRequest(fqn: "x", reason: "offset -1 length 4")) {
            try LoadPlanner.planReads(tensors: [], bytes: [BytesReadRequest(fqn: "x", file: 0, offset: -1, length: 4, destination: 0)])
        }
    }

    @Test func mismatchErrorsSayWhatWasSavedAndAsked() {
        let saved = layout([4, 4], [box([0, 0], [4, 4])])
        #expect(throws: LoadPlanError.missingInCheckpoint(fqn: "w")) {
            try LoadPlanner.planOverlaps(request([4, 4], [box([0, 0], [4, 4])]), saved: nil)
        }
        #expect(throws: LoadPlanError.kindMismatch(fqn: "w", saved: "non-tensor value", requested: "tensor")) {
            try LoadPlanner.planOverlaps(request([4, 4], [box([0, 0], [4, 4])]), saved: .bytes)
        }
        #expect(throws: LoadPlanError.shapeMismatch(fqn: "w", saved: [4, 4], requested: [4, 5])) {
            try LoadPlanner.planOverlaps(request([4, 5], [box([0, 0], [4, 5])]), saved: saved)
        }
        #expect(throws: LoadPlanError.dtypeMismatch(fqn: "w", saved: "float32", requested: "bfloat16")) {
            try LoadPlanner.planOverlaps(request([4, 4], [box([0, 0], [4, 4])], elementSize: 2, dtype: "bfloat16"), saved: saved)
        }
        #expect(throws: LoadPlanError.elementSizeMismatch(fqn: "w", saved: 4, requested: 8)) {
            try LoadPlanner.planOverlaps(request([4, 4], [box([0, 0], [4, 4])], elementSize: 8), saved: saved)
        }
        let text = LoadPlanError.shapeMismatch(fqn: "w", saved: [4, 4], requested: [4, 5]).description
        #expect(text.contains("[4, 4]") && text.contains("[4, 5]") && text.contains("'w'"))
    }

    @Test func holesAreReportedWithTheirRegion() {
        let saved = layout([4, 4], [box([0, 0], [2, 4]), box([2, 0], [2, 2])])
        #expect(
            throws: LoadPlanError.notCovered(
                fqn: "w", requested: box([1, 1], [3, 3]), hole: box([2, 2], [2, 2]), savedChunkCount: 2)
        ) {
            try LoadPlanner.planOverlaps(request([4, 4], [box([1, 1], [3, 3])]), saved: saved)
        }
        #expect(throws: LoadPlanError.notCovered(fqn: "s", requested: box([], []), hole: box([], []), savedChunkCount: 0)) {
            try LoadPlanner.planOverlaps(request([], [box([], [])], fqn: "s"), saved: layout([], []))
        }
        let text = LoadPlanError.notCovered(fqn: "w", requested: box([1, 1], [3, 3]), hole: box([2, 2], [2, 2]), savedChunkCount: 2).description
        #expect(text.contains("offsets [2, 2] sizes [2, 2]"))
    }

    @Test func malformedLayoutsRequestsAndPayloads() throws {
        #expect(throws: LoadPlanError.invalidSavedLayout(fqn: "w", reason: "chunk 1 (offsets [3] sizes [2]) ends past the tensor extent 4 on dim 0")) {
            try LoadPlanner.planOverlaps(request([4], [box([0], [4])]), saved: layout([4], [box([0], [3]), box([3], [2])]))
        }
        #expect(throws: LoadPlanError.invalidSavedLayout(fqn: "w", reason: "chunk 0 (offsets [0] sizes [3]) overlaps chunk 1 (offsets [2] sizes [2])")) {
            try LoadPlanner.planOverlaps(request([4], [box([0], [4])]), saved: layout([4], [box([0], [3]), box([2], [2])]))
        }
        #expect(throws: LoadPlanError.invalidSavedLayout(fqn: "s", reason: "chunk 0 (offsets [] sizes []) overlaps chunk 1 (offsets [] sizes [])")) {
            try LoadPlanner.planOverlaps(request([], [box([], [])], fqn: "s"), saved: layout([], [box([], []), box([], [])]))
        }
        #expect(throws: LoadPlanError.invalidRequest(fqn: "w", reason: "local chunk 0 (offsets [2] sizes [3]) ends past the tensor extent 4 on dim 0")) {
            try LoadPlanner.planOverlaps(request([4], [box([2], [3])]), saved: layout([4], [box([0], [4])]))
        }
        #expect(throws: LoadPlanError.invalidRequest(fqn: "w", reason: "global shape [-1]: negative extent -1")) {
            try LoadPlanner.planOverlaps(request([-1], []), saved: layout([4], [box([0], [4])]))
        }
        let saved = layout([4], [box([0], [2]), box([2], [2])])
        let plan = try LoadPlanner.planOverlaps(request([4], [box([0], [4])]), saved: saved)
        #expect(throws: LoadPlanError.missingPayload(fqn: "w", savedChunk: 1, box: box([2], [2]))) {
            try LoadPlanner.planReads(tensors: [TensorReadSource(plan: plan, payloads: [0: PayloadLocation(file: 0, offset: 0, length: 8)])])
        }
        #expect(throws: LoadPlanError.invalidPayload(fqn: "w", savedChunk: 0, reason: "length 7 but chunk offsets [0] sizes [2] of 4-byte elements needs 8")) {
            try LoadPlanner.planReads(tensors: [TensorReadSource(plan: plan, payloads: [0: PayloadLocation(file: 0, offset: 0, length: 7)])])
        }
        #expect(throws: LoadPlanError.invalidPayload(fqn: "w", savedChunk: 0, reason: "invalid offset -5")) {
            try LoadPlanner.planReads(tensors: [TensorReadSource(plan: plan, payloads: [0: PayloadLocation(file: 0, offset: -5, length: 8)])])
        }
        #expect(throws: LoadPlanError.invalidOptions("maxReadSize must be at least 1, got 0")) {
            try LoadPlanner.planReads(tensors: [], options: ReadPlanOptions(maxReadSize: 0))
        }
        #expect(throws: LoadPlanError.invalidOptions("gapBudgetFraction must be a finite value >= 0, got -1.0")) {
            try LoadPlanner.planReads(tensors: [], options: ReadPlanOptions(gapBudgetFraction: -1))
        }
    }

    @Test func wholeStateDictPhaseOne() throws {
        let checkpoint: [String: SavedEntry] = [
            "a": layout([4], [box([0], [2]), box([2], [2])]), "b": layout([2, 2], [box([0, 0], [2, 2])]), "x": .bytes,
        ]
        let plans = try LoadPlanner.planOverlaps(
            [request([4], [box([2], [2])], fqn: "a"), request([2, 2], [box([0, 0], [2, 2])], fqn: "b")],
            checkpoint: checkpoint)
        #expect(plans.map(\.neededSavedChunks) == [[1], [0]])
        #expect(throws: LoadPlanError.missingInCheckpoint(fqn: "c")) {
            try LoadPlanner.planOverlaps([request([4], [box([0], [4])], fqn: "c")], checkpoint: checkpoint)
        }
        #expect(throws: LoadPlanError.kindMismatch(fqn: "x", saved: "non-tensor value", requested: "tensor")) {
            try LoadPlanner.planOverlaps([request([4], [box([0], [4])], fqn: "x")], checkpoint: checkpoint)
        }
    }

    @Test func fixtureBColumnShardsLoadIntoThreeRowShards() throws {
        // Spec §7 example (2 -> 3 with Shard(1) -> Shard(0)) on fixture b's model.proj.weight [4, 6].
        let manifest = try FixtureManifest.load()
        let fixture = try #require(manifest.fixtures["b_2rank_shard1"])
        let tensor = try #require(fixture.tensors.first { $0.fqn == "model.proj.weight" })
        let saved = layout(tensor.shape, tensor.chunks.map { box($0.offsets, $0.sizes) })
        let rowShards = [box([0, 0], [2, 6]), box([2, 0], [1, 6]), box([3, 0], [1, 6])]
        var total = 0
        for shard in rowShards {
            let plan = try LoadPlanner.planOverlaps(request([4, 6], [shard], fqn: "model.proj.weight"), saved: saved)
            #expect(plan.neededSavedChunks == [0, 1])
            total += plan.neededBytes
        }
        #expect(total == 96)
    }
}
