import Testing

@testable import CkptBench

@Suite struct ShardingTests {
    @Test func chunkRangesFollowTorchChunk() {
        #expect(BenchSharding.chunkRanges(length: 10, parts: 4) == [0..<3, 3..<6, 6..<9, 9..<10])
        #expect(BenchSharding.chunkRanges(length: 5, parts: 4) == [0..<2, 2..<4, 4..<5, 5..<5])
        #expect(BenchSharding.chunkRanges(length: 2, parts: 4) == [0..<1, 1..<2, 2..<2, 2..<2])
        #expect(BenchSharding.chunkRanges(length: 8, parts: 4) == [0..<2, 2..<4, 4..<6, 6..<8])
        #expect(BenchSharding.chunkRanges(length: 0, parts: 3) == [0..<0, 0..<0, 0..<0])
        #expect(BenchSharding.chunkRanges(length: 7, parts: 0).isEmpty)
        // torch.chunk(range(6), 4) gives sizes 2, 2, 2: one trailing empty part.
        #expect(BenchSharding.chunkRanges(length: 6, parts: 4).map(\.count) == [2, 2, 2, 0])
    }

    @Test func chunkRangesTileExactlyForManyLengths() {
        for parts in 1...8 {
            for length in 0...70 {
                let ranges = BenchSharding.chunkRanges(length: length, parts: parts)
                #expect(ranges.count == parts)
                var next = 0
                for range in ranges where !range.isEmpty {
                    #expect(range.lowerBound == next)
                    next = range.upperBound
                }
                #expect(next == length)
                let step = (length + parts - 1) / parts
                #expect(ranges.allSatisfy { $0.count <= step })
                // Non-empty chunks come first, all full except possibly the last non-empty one.
                let sizes = ranges.map(\.count).filter { $0 > 0 }
                #expect(sizes.dropLast().allSatisfy { $0 == step })
            }
        }
    }

    /// Marks every element of every tensor covered by `layout`; each must be covered exactly once.
    private func expectExactTiling(_ workload: BenchWorkload, _ layout: BenchShardLayout) {
        var coverage: [String: [UInt8]] = [:]
        for tensor in workload.tensors { coverage[tensor.fqn] = [UInt8](repeating: 0, count: tensor.elementCount) }
        for rank in 0..<layout.ranks {
            for chunk in layout.chunks(rank: rank) {
                #expect(!chunk.isEmpty)
                let rowLength = chunk.globalShape.count == 2 ? chunk.globalShape[1] : 1
                for r in 0..<(chunk.sizes.first ?? 1) {
                    for c in 0..<(chunk.sizes.count == 2 ? chunk.sizes[1] : 1) {
                        let row = (chunk.offsets.first ?? 0) + r
                        let column = (chunk.offsets.count == 2 ? chunk.offsets[1] : 0) + c
                        coverage[chunk.fqn]?[row * rowLength + column] += 1
                    }
                }
            }
        }
        for (fqn, marks) in coverage {
            #expect(marks.allSatisfy { $0 == 1 }, "\(fqn) not tiled exactly by \(layout.ranks) ranks \(layout.axis)")
        }
        #expect(layout.totalBytes == workload.totalBytes)
    }

    @Test func layoutsTileEveryTensorForRanks1To8() throws {
        // Awkward sizes: vocab 13 and d 8 give uneven and empty shards.
        let workload = BenchWorkload(shape: BenchModelShape(modelDim: 8, layers: 1, vocab: 13, tiedHead: false))
        for ranks in 1...8 {
            expectExactTiling(workload, try workload.shardLayout(ranks: ranks))
            expectExactTiling(workload, try workload.shardLayout(ranks: ranks, axis: .columns))
            #expect(try workload.targetLayout(ranks: ranks) == workload.shardLayout(ranks: ranks))
        }
    }

    @Test func unevenAndEmptyShards() throws {
        let workload = BenchWorkload(shape: BenchModelShape(modelDim: 8, layers: 1, vocab: 13), mix: .bf16Model)
        let layout = try workload.shardLayout(ranks: 7)
        // vocab 13 over 7: step 2 -> 2,2,2,2,2,2,1.
        let embedding = (0..<7).compactMap { rank in
            layout.chunks(rank: rank).first { $0.fqn == "model.tok_embeddings.weight" }
        }
        #expect(embedding.map { $0.sizes[0] } == [2, 2, 2, 2, 2, 2, 1])
        #expect(embedding.map { $0.offsets[0] } == [0, 2, 4, 6, 8, 10, 12])
        #expect(embedding.allSatisfy { $0.sizes[1] == 8 && $0.offsets[1] == 0 })
        // A bias of 8 over 7 ranks: step 2 -> 2,2,2,2 then three empty shards, omitted.
        let holders = (0..<7).filter { rank in layout.chunks(rank: rank).contains { $0.fqn == "model.norm.bias" } }
        #expect(holders == [0, 1, 2, 3])
        #expect(layout.bytesPerRank.reduce(0, +) == workload.totalBytes)
        #expect(layout.bytesPerRank[0] > layout.bytesPerRank[6])
        #expect(layout.bytes(rank: 3) == layout.bytesPerRank[3])
        #expect(layout.bytes(rank: 99) == 0)
        #expect(throws: BenchWorkloadError.invalidRanks(0)) { try workload.shardLayout(ranks: 0) }
    }

    @Test func columnLayoutSplitsDimensionOne() throws {
        let workload = BenchWorkload(shape: BenchModelShape(modelDim: 8, layers: 1, vocab: 13), mix: .bf16Model)
        let layout = try workload.shardLayout(ranks: 3, axis: .columns)
        let fc2 = layout.chunksByRank.flatMap { $0 }.filter { $0.fqn == "model.layers.0.mlp.fc2.weight" }
        #expect(fc2.map(\.sizes) == [[8, 11], [8, 11], [8, 10]])
        #expect(fc2.map(\.offsets) == [[0, 0], [0, 11], [0, 22]])
        let bias = layout.chunksByRank.flatMap { $0 }.filter { $0.fqn == "model.layers.0.mlp.fc1.bias" }
        #expect(bias.map(\.sizes) == [[11], [11], [10]])
    }
}
