import Testing

@testable import CkptPlan

/// Rebuilds every rank's pre-dedup save plan of a DCP fixture from the manifest's placements, as
/// `create_default_local_save_plan` would: sharded DTensors give each rank its torch shard
/// (ceil-division chunks, empty shards at offset n), replicated and plain tensors give every rank
/// the whole tensor, and every rank emits every non-tensor value.
func fixtureRankPlans(_ fixture: FixtureManifest.Fixture) throws -> [[SaveItem]] {
    var plans: [[SaveItem]] = []
    for rank in 0..<fixture.worldSize {
        var items: [SaveItem] = []
        for tensor in fixture.tensors {
            let elementSize = try #require(FixtureManifest.elementSizes[tensor.dtype])
            var box = ChunkBox(wholeTensorOfShape: tensor.shape)
            if let placement = tensor.placements?.first, placement.hasPrefix("Shard(dim=") {
                let digits = placement.dropFirst("Shard(dim=".count).prefix { $0.isNumber }
                let dim = try #require(Int(digits))
                let extent = tensor.shape[dim]
                let chunk = (extent + fixture.worldSize - 1) / fixture.worldSize
                let start = min(rank * chunk, extent)
                let size = max(0, min(extent, (rank + 1) * chunk) - start)
                box.offsets[dim] = size == 0 ? extent : start
                box.sizes[dim] = size
            }
            items.append(
                .tensor(
                    TensorWriteItem(
                        fqn: tensor.fqn, globalShape: tensor.shape, elementSize: elementSize,
                        dtype: tensor.dtype, chunk: box)))
        }
        for object in fixture.objects { items.append(.bytes(fqn: object.fqn)) }
        plans.append(items)
    }
    return plans
}

func identity(_ item: SaveItem) -> String {
    switch item {
    case .tensor(let tensor): return "\(tensor.fqn)@\(tensor.chunk.offsets)"
    case .bytes(let fqn, _): return fqn
    }
}

@Suite struct SavePlannerFixtureTests {
    /// Checks that the planner puts every chunk and value of a fixture in the file torch chose, in
    /// the same order within each file, and rebuilds the metadata's chunk lists.
    func checkFixture(_ name: String) throws -> GlobalSavePlan {
        let manifest = try FixtureManifest.load()
        let fixture = try #require(manifest.fixtures[name])
        let ranks = try fixtureRankPlans(fixture)
        let plan = try SavePlanner.plan(
            ranks: ranks,
            options: SavePlanOptions(fileLayout: .singleFilePerRank(filesPerRank: fixture.threadCount)))

        // Expected: per file, identities sorted by record offset.
        var expectedFiles: [String: [(offset: Int, id: String)]] = [:]
        for tensor in fixture.tensors {
            for chunk in tensor.chunks {
                expectedFiles[chunk.file, default: []].append((chunk.offset, "\(tensor.fqn)@\(chunk.offsets)"))
            }
        }
        for object in fixture.objects {
            let file = try #require(object.file)
            expectedFiles[file, default: []].append((try #require(object.offset), object.fqn))
        }
        var plannedFiles: [String: [String]] = [:]
        for (rank, files) in plan.files.enumerated() {
            #expect(files.count == fixture.threadCount)
            for file in files where !file.items.isEmpty {
                plannedFiles[file.name] = file.items.map { identity(ranks[rank][$0]) }
            }
        }
        #expect(Set(plannedFiles.keys) == Set(expectedFiles.keys), "\(name): files")
        for (file, entries) in expectedFiles {
            let expected = entries.sorted { $0.offset < $1.offset }.map(\.id)
            #expect(plannedFiles[file] == expected, "\(name): order in \(file)")
        }

        // Metadata chunk lists equal the saved ones, in order.
        for tensor in fixture.tensors {
            let entry = try #require(plan.metadata.first { $0.fqn == tensor.fqn })
            guard case .tensor(let model) = entry.kind else {
                Issue.record("\(tensor.fqn) is not a tensor entry")
                continue
            }
            #expect(model.globalShape == tensor.shape)
            #expect(model.dtype == tensor.dtype)
            #expect(model.chunks.map(\.box) == tensor.chunks.map { ChunkBox(offsets: $0.offsets, sizes: $0.sizes) })
        }
        return plan
    }

    @Test func fixtureA() throws {
        let plan = try checkFixture("a_4rank_shard0")
        // Spec §6: 0-d replicated DTensor to rank 1, replicated plain tensor to rank 2, BYTE_IO
        // values to ranks 3, 3, 3, 3, 1.
        let writer: (String) -> Int? = { fqn in
            guard let entry = plan.metadata.first(where: { $0.fqn == fqn }) else { return nil }
            switch entry.kind {
            case .tensor(let tensor): return tensor.chunks.first?.writer.rank
            case .bytes(let writer): return writer.rank
            }
        }
        #expect(writer("model.scale") == 1)
        #expect(writer("model.buf_replicated") == 2)
        #expect(
            ["extra.epoch", "extra.note", "extra.lrs", "extra.flag", "extra.nothing"].map(writer) == [3, 3, 3, 3, 1])
        // Metadata order = first appearance in the de-duplicated plans. The consolidated file
        // (dcp_to_torch_save walks the metadata) lists the values as nothing, epoch, note, lrs, flag.
        #expect(
            plan.metadata.map(\.fqn) == [
                "model.embed.weight", "model.layers.0.attn.qkv.bias", "model.layers.0.mlp.fc.weight",
                "model.tok_ids", "model.scale", "extra.nothing", "model.buf_replicated",
                "extra.epoch", "extra.note", "extra.lrs", "extra.flag",
            ])
        let manifest = try FixtureManifest.load()
        let consolidated = try #require(manifest.fixtures["f_consolidated/a_4rank_shard0.pt"])
        let bytesOrder = plan.metadata.filter { if case .bytes = $0.kind { true } else { false } }.map(\.fqn)
        #expect(bytesOrder == consolidated.objects.map(\.fqn))
    }

    @Test func fixtureB() throws { _ = try checkFixture("b_2rank_shard1") }

    @Test func fixtureCWithTwoFilesPerRankAndEmptyShards() throws {
        let plan = try checkFixture("c_4rank_uneven_empty")
        let entry = try #require(plan.metadata.first { $0.fqn == "model.b.weight" })
        guard case .tensor(let model) = entry.kind else {
            Issue.record("not a tensor")
            return
        }
        #expect(model.chunks.map(\.writer.rank) == [0, 1, 3])
    }

    @Test func fixtureDSingleRankNested() throws {
        // Rebuild the one plan from the flattened state dict instead of the manifest.
        let manifest = try FixtureManifest.load()
        let fixture = try #require(manifest.fixtures["d_1rank_nested"])
        let byFQN = Dictionary(uniqueKeysWithValues: fixture.tensors.map { ($0.fqn, $0) })
        let flat = try fixtureDStateDict().flatten(isTensor: \.isTensor)
        let items: [SaveItem] = try flat.map { entry in
            if let tensor = byFQN[entry.fqn] {
                return .tensor(
                    TensorWriteItem(
                        fqn: entry.fqn, wholeTensorOfShape: tensor.shape,
                        elementSize: try #require(FixtureManifest.elementSizes[tensor.dtype]), dtype: tensor.dtype))
            }
            return .bytes(fqn: entry.fqn)
        }
        let plan = try SavePlanner.plan(ranks: [items])
        let file = try #require(plan.files.first?.first)
        #expect(file.name == "__0_0.distcp")
        var expected: [(Int, String)] = fixture.tensors.map { ($0.chunks[0].offset, "\($0.fqn)@\($0.chunks[0].offsets)") }
        expected += fixture.objects.map { ($0.offset ?? -1, $0.fqn) }
        #expect(file.items.map { identity(items[$0]) } == expected.sorted { $0.0 < $1.0 }.map(\.1))
    }

    @Test func fixtureGLightning() throws { _ = try checkFixture("g_lightning_fsdp_sharded") }

    @Test func lowestRankPolicyKeepsEverythingReplicatedOnRankZero() throws {
        let manifest = try FixtureManifest.load()
        let fixture = try #require(manifest.fixtures["a_4rank_shard0"])
        let plan = try SavePlanner.plan(
            ranks: try fixtureRankPlans(fixture), options: SavePlanOptions(dedup: .lowestRank))
        for entry in plan.metadata {
            switch entry.kind {
            case .bytes(let writer): #expect(writer.rank == 0)
            case .tensor(let tensor) where tensor.chunks.count == 1: #expect(tensor.chunks[0].writer.rank == 0)
            case .tensor(let tensor): #expect(tensor.chunks.map(\.writer.rank) == [0, 1, 2, 3])
            }
        }
    }
}

func tensorItem(_ fqn: String, _ shape: [Int], offsets: [Int]? = nil, sizes: [Int]? = nil, elementSize: Int = 4, dtype: String = "float32")
    -> SaveItem
{
    .tensor(
        TensorWriteItem(
            fqn: fqn, globalShape: shape, elementSize: elementSize, dtype: dtype,
            chunk: ChunkBox(offsets: offsets ?? shape.map { _ in 0 }, sizes: sizes ?? shape)))
}

@Suite struct SavePlannerUnitTests {
    @Test func dedupChargesGlobalBytesAndBreaksTiesToLowestRank() throws {
        // Rank 0 holds a big shard; the replicated item goes to the idle rank with the lowest number.
        let ranks: [[SaveItem]] = [
            [tensorItem("w", [8, 4], offsets: [0, 0], sizes: [4, 4]), tensorItem("r", [2]), .bytes(fqn: "x")],
            [tensorItem("w", [8, 4], offsets: [4, 0], sizes: [4, 4]), tensorItem("r", [2]), .bytes(fqn: "x")],
            [tensorItem("r", [2]), .bytes(fqn: "x")],
        ]
        let plan = try SavePlanner.plan(ranks: ranks)
        // Visit order: w@0 -> r0 (+128 global bytes), r -> r1 (tie r1/r2 at 0), x -> r2, w@4 -> r1.
        #expect(plan.keptItems == [[0], [0, 1], [1]])
        #expect(plan.assignedWeights == [128, 8 + 128, 1])
        #expect(plan.tensorBytesPerRank == [64, 8 + 64, 0])
    }

    @Test func dedupCountsGlobalTensorBytesNotChunkBytes() throws {
        // torch's WriteItem.tensor_storage_size() multiplies TensorWriteData.size, the *global*
        // shape. Visit order: p0 (rank 0), p (rank 1: charged 400 B global, 40 B of chunk), s
        // (ranks 1, 2 -> rank 2, 200 B), r (ranks 1, 2): global counters 400 vs 200 send r to
        // rank 2; chunk bytes (40 vs 200) would send it to rank 1.
        let ranks: [[SaveItem]] = [
            [tensorItem("p", [100], offsets: [10], sizes: [90])],
            [tensorItem("p", [100], offsets: [0], sizes: [10]), tensorItem("s", [50]), tensorItem("r", [3])],
            [tensorItem("s", [50]), tensorItem("r", [3])],
        ]
        let plan = try SavePlanner.plan(ranks: ranks)
        #expect(plan.keptItems == [[0], [0], [0, 1]])
        #expect(plan.assignedWeights == [400, 400, 212])
        // Our balanced policy charges chunk bytes: unique first (rank 1: 40), then s -> rank 2, r -> rank 1.
        let balanced = try SavePlanner.plan(ranks: ranks, options: SavePlanOptions(dedup: .balancedByBytes))
        #expect(balanced.keptItems == [[0], [0, 2], [0]])
    }

    @Test func globallyEmptyTensorCountsOneByte() throws {
        let ranks: [[SaveItem]] = [
            [tensorItem("e", [0, 4])], [tensorItem("e", [0, 4])], [tensorItem("e", [0, 4])],
        ]
        let plan = try SavePlanner.plan(ranks: ranks)
        #expect(plan.keptItems == [[0], [], []])
        #expect(plan.assignedWeights == [1, 0, 0])
        guard case .tensor(let model) = plan.metadata[0].kind else {
            Issue.record("not a tensor")
            return
        }
        #expect(model.chunks.count == 1)
        // Ranks with nothing still have their (empty) file.
        #expect(plan.files.map { $0.map(\.items) } == [[[0]], [[]], [[]]])
    }

    @Test func balancedPolicySpreadsReplicatedBytes() throws {
        let replicated = (0..<6).map { tensorItem("r\($0)", [100 * ($0 + 1)]) }
        let ranks: [[SaveItem]] = [
            [tensorItem("own0", [1000])] + replicated,
            replicated,
            replicated,
        ]
        let torch = try SavePlanner.plan(ranks: ranks)
        let balanced = try SavePlanner.plan(ranks: ranks, options: SavePlanOptions(dedup: .balancedByBytes))
        // Unique first: rank 0 = 4000 B. Then largest first: r5 (2400 B) -> rank 1, r4 (2000) ->
        // rank 2, r3 (1600) -> rank 2, r2 (1200) -> rank 1, r1 (800) -> rank 1 (tie), r0 (400) -> rank 2.
        #expect(balanced.tensorBytesPerRank.reduce(0, +) == torch.tensorBytesPerRank.reduce(0, +))
        let spread = balanced.tensorBytesPerRank.max()! - balanced.tensorBytesPerRank.min()!
        let torchSpread = torch.tensorBytesPerRank.max()! - torch.tensorBytesPerRank.min()!
        #expect(spread <= torchSpread)
        #expect(balanced.tensorBytesPerRank == [4000, 2400 + 1200 + 800, 2000 + 1600 + 400])
    }

    @Test func bucketingRoundRobinsBytesAndBalancesTensorsByGlobalSize() throws {
        // Global sizes 10, 30, 20, 20, 5 bytes (1-byte elements), the first a 2-element chunk of
        // a 10-element tensor: bucketing uses the global size, not the chunk size.
        let items: [SaveItem] = [
            tensorItem("i0", [10], offsets: [0], sizes: [2], elementSize: 1, dtype: "u8"),
            .bytes(fqn: "b0"),
            tensorItem("i1", [30], elementSize: 1, dtype: "u8"),
            .bytes(fqn: "b1"),
            tensorItem("i2", [20], elementSize: 1, dtype: "u8"),
            .bytes(fqn: "b2"),
            tensorItem("i3", [20], elementSize: 1, dtype: "u8"),
            .bytes(fqn: "b3"),
            tensorItem("i4", [5], elementSize: 1, dtype: "u8"),
        ]
        let plan = try SavePlanner.plan(
            ranks: [items], options: SavePlanOptions(fileLayout: .singleFilePerRank(filesPerRank: 3)))
        let names = plan.files[0].map { $0.items.map { items[$0].fqn } }
        // Sorted: i1(30) -> 0, i2(20) -> 1, i3(20) -> 2, i0(10) -> 1 (tie 20/20: first), i4(5) -> 2.
        #expect(names == [["b0", "b3", "i1"], ["b1", "i2", "i0"], ["b2", "i3", "i4"]])
        #expect(plan.files[0].map(\.name) == ["__0_0.distcp", "__0_1.distcp", "__0_2.distcp"])

        let single = try SavePlanner.plan(ranks: [items])
        #expect(single.files[0][0].items.map { items[$0].fqn } == ["b0", "b1", "b2", "b3", "i0", "i1", "i2", "i3", "i4"])

        let perItem = try SavePlanner.plan(ranks: [items], options: SavePlanOptions(fileLayout: .filePerItem))
        #expect(perItem.files[0].map(\.items) == (0..<9).map { [$0] })
        #expect(perItem.files[0].last?.name == "__0_8.distcp")
    }

    @Test func inconsistentTensorsNameRanksAndValues() {
        #expect(
            throws: SavePlanError.inconsistentTensor(
                fqn: "w", field: "global shape", firstRank: 0, firstValue: "[4, 4]", rank: 2, value: "[4, 5]")
        ) {
            try SavePlanner.plan(ranks: [
                [tensorItem("w", [4, 4], offsets: [0, 0], sizes: [2, 4])], [],
                [tensorItem("w", [4, 5], offsets: [2, 0], sizes: [2, 5])],
            ])
        }
        #expect(
            throws: SavePlanError.inconsistentTensor(
                fqn: "w", field: "dtype", firstRank: 0, firstValue: "float32", rank: 1, value: "bfloat16")
        ) {
            try SavePlanner.plan(ranks: [[tensorItem("w", [4])], [tensorItem("w", [4], elementSize: 2, dtype: "bfloat16")]])
        }
        #expect(
            throws: SavePlanError.inconsistentTensor(
                fqn: "w", field: "element size", firstRank: 0, firstValue: "4", rank: 1, value: "2")
        ) {
            try SavePlanner.plan(ranks: [[tensorItem("w", [4])], [tensorItem("w", [4], elementSize: 2)]])
        }
        let message = SavePlanError.inconsistentTensor(
            fqn: "w", field: "global shape", firstRank: 0, firstValue: "[4, 4]", rank: 2, value: "[4, 5]"
        ).description
        #expect(message.contains("rank 0") && message.contains("rank 2") && message.contains("[4, 5]"))
    }

    @Test func kindAndDuplicateErrors() {
        #expect(throws: SavePlanError.kindMismatch(fqn: "x", tensorRank: 1, bytesRank: 0)) {
            try SavePlanner.plan(ranks: [[.bytes(fqn: "x")], [tensorItem("x", [1])]])
        }
        #expect(throws: SavePlanError.duplicateItem(fqn: "w", rank: 0, firstItem: 0, secondItem: 1)) {
            try SavePlanner.plan(ranks: [[tensorItem("w", [4]), tensorItem("w", [4])]])
        }
        #expect(
            throws: SavePlanError.conflictingChunkSizes(
                fqn: "w", offsets: [2], firstRank: 0, firstSizes: [0], rank: 1, sizes: [2])
        ) {
            try SavePlanner.plan(ranks: [
                [tensorItem("w", [4], offsets: [0], sizes: [2]), tensorItem("w", [4], offsets: [2], sizes: [0])],
                [tensorItem("w", [4], offsets: [2], sizes: [2])],
            ])
        }
        #expect(throws: SavePlanError.duplicateItem(fqn: "x", rank: 1, firstItem: 0, secondItem: 1)) {
            try SavePlanner.plan(ranks: [[], [.bytes(fqn: "x"), .bytes(fqn: "x")]])
        }
    }

    @Test func chunkValidationErrors() {
        let ref = SaveItemReference(rank: 0, item: 0)
        #expect(throws: SavePlanError.invalidItem(ref, fqn: "w", reason: "chunk offsets [3] sizes [2] ends past the tensor extent 4 on dim 0")) {
            try SavePlanner.plan(ranks: [[tensorItem("w", [4], offsets: [3], sizes: [2])]])
        }
        #expect(throws: SavePlanError.invalidItem(ref, fqn: "w", reason: "chunk offsets [-1] sizes [2] offset -1 < 0 on dim 0")) {
            try SavePlanner.plan(ranks: [[tensorItem("w", [4], offsets: [-1], sizes: [2])]])
        }
        #expect(throws: SavePlanError.invalidItem(ref, fqn: "w", reason: "chunk offsets [0] sizes [4] has 1 offsets and 1 sizes for a 2-d tensor")) {
            try SavePlanner.plan(ranks: [[tensorItem("w", [4, 4], offsets: [0], sizes: [4])]])
        }
        #expect(throws: SavePlanError.invalidItem(ref, fqn: "w", reason: "global shape [4611686018427387904, 4]: byte size overflows")) {
            try SavePlanner.plan(ranks: [[tensorItem("w", [1 << 62, 4], offsets: [0, 0], sizes: [1, 1])]])
        }
        #expect(throws: SavePlanError.invalidOptions("filesPerRank must be at least 1, got 0")) {
            try SavePlanner.plan(ranks: [[]], options: SavePlanOptions(fileLayout: .singleFilePerRank(filesPerRank: 0)))
        }
    }

    @Test func overlapAndCoverageErrors() {
        #expect(
            throws: SavePlanError.overlappingChunks(
                fqn: "w", first: ChunkBox(offsets: [0, 0], sizes: [3, 4]), firstWriter: SaveItemReference(rank: 0, item: 0),
                second: ChunkBox(offsets: [2, 0], sizes: [2, 4]), secondWriter: SaveItemReference(rank: 1, item: 0))
        ) {
            try SavePlanner.plan(ranks: [
                [tensorItem("w", [4, 4], offsets: [0, 0], sizes: [3, 4])],
                [tensorItem("w", [4, 4], offsets: [2, 0], sizes: [2, 4])],
            ])
        }
        #expect(throws: SavePlanError.incompleteCoverage(fqn: "w", chunkVolume: 12, tensorVolume: 16)) {
            try SavePlanner.plan(ranks: [
                [tensorItem("w", [4, 4], offsets: [0, 0], sizes: [2, 4])],
                [tensorItem("w", [4, 4], offsets: [2, 0], sizes: [1, 4])],
            ])
        }
        // DCP's rule: an empty chunk strictly inside another one overlaps it.
        #expect(
            throws: SavePlanError.overlappingChunks(
                fqn: "w", first: ChunkBox(offsets: [0], sizes: [4]), firstWriter: SaveItemReference(rank: 0, item: 0),
                second: ChunkBox(offsets: [2], sizes: [0]), secondWriter: SaveItemReference(rank: 1, item: 0))
        ) {
            try SavePlanner.plan(ranks: [[tensorItem("w", [4])], [tensorItem("w", [4], offsets: [2], sizes: [0])]])
        }
        // One rank: DCP skips the volume check; 0-size chunks never overlap; 0-d tensors are exempt.
        #expect(throws: Never.self) {
            _ = try SavePlanner.plan(ranks: [[tensorItem("w", [4, 4], offsets: [0, 0], sizes: [2, 4])]])
            _ = try SavePlanner.plan(ranks: [
                [tensorItem("w", [2, 4], offsets: [0, 0], sizes: [2, 4])],
                [tensorItem("w", [2, 4], offsets: [2, 0], sizes: [0, 4])],
                [tensorItem("s", [])],
            ])
        }
    }
}
