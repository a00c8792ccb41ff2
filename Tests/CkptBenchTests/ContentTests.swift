import CkptTestSupport
import Testing

@testable import CkptBench

@Suite struct ContentTests {
    let content = BenchContent()

    private func bytes(
        _ fqn: String, shape: [Int], elementSize: Int, offsets: [Int], sizes: [Int], seed: UInt64? = nil
    ) throws -> [UInt8] {
        let generator = seed.map { BenchContent(seed: $0) } ?? content
        let count = sizes.reduce(elementSize, *)
        var out = [UInt8](repeating: 0xEE, count: count)
        try out.withUnsafeMutableBytes { buffer in
            try generator.fill(
                fqn: fqn, globalShape: shape, elementSize: elementSize, offsets: offsets, sizes: sizes, into: buffer)
        }
        return out
    }

    @Test func matchesTheDocumentedFormula() throws {
        let whole = try bytes("t", shape: [37], elementSize: 1, offsets: [0], sizes: [37])
        let seed = content.tensorSeed(fqn: "t")
        for index in 0..<37 {
            let word = splitMixWord(seed, UInt64(index / 8))
            #expect(whole[index] == UInt8(truncatingIfNeeded: word >> UInt64(8 * (index % 8))))
        }
        // Deterministic, and different per tensor name and per seed.
        #expect(try bytes("t", shape: [37], elementSize: 1, offsets: [0], sizes: [37]) == whole)
        #expect(try bytes("u", shape: [37], elementSize: 1, offsets: [0], sizes: [37]) != whole)
        #expect(try bytes("t", shape: [37], elementSize: 1, offsets: [0], sizes: [37], seed: 7) != whole)
    }

    @Test func chunksMatchTheWholeTensorAtRandomBoxes() throws {
        let seed = testSeed()
        var rng = SplitMix64(seed: seed)
        for trial in 0..<150 {
            let rank = Int.random(in: 0...4, using: &rng)
            let shape = (0..<rank).map { _ in Int.random(in: 1...9, using: &rng) }
            let elementSize = [1, 2, 4, 8, 3][Int.random(in: 0...4, using: &rng)]
            let whole = try bytes("p\(trial)", shape: shape, elementSize: elementSize, offsets: shape.map { _ in 0 }, sizes: shape)
            var offsets: [Int] = []
            var sizes: [Int] = []
            for extent in shape {
                let offset = Int.random(in: 0..<extent, using: &rng)
                offsets.append(offset)
                sizes.append(Int.random(in: 0...(extent - offset), using: &rng))
            }
            let chunk = try bytes("p\(trial)", shape: shape, elementSize: elementSize, offsets: offsets, sizes: sizes)
            // Gather the expected chunk from the whole tensor, element by element.
            var expected: [UInt8] = []
            let count = sizes.reduce(1, *)
            for linear in 0..<count {
                var remainder = linear
                var global = 0
                var stride = 1
                var coordinates = [Int](repeating: 0, count: rank)
                for dimension in (0..<rank).reversed() {
                    coordinates[dimension] = remainder % sizes[dimension]
                    remainder /= sizes[dimension]
                }
                for dimension in (0..<rank).reversed() {
                    global += (offsets[dimension] + coordinates[dimension]) * stride
                    stride *= shape[dimension]
                }
                expected.append(contentsOf: whole[(global * elementSize)..<((global + 1) * elementSize)])
            }
            #expect(chunk == expected, "seed \(seed) trial \(trial): shape \(shape) offsets \(offsets) sizes \(sizes)")
        }
    }

    @Test func wholeTensorEqualsConcatenatedRowShardsOfAnyLayout() throws {
        let workload = BenchWorkload(shape: BenchModelShape(modelDim: 8, layers: 1, vocab: 13), mix: .fp32Adam)
        let tensor = try #require(workload.tensor(named: "optim.state.tok_embeddings.weight.exp_avg"))
        let whole = try bytes(tensor.fqn, shape: tensor.shape, elementSize: 4, offsets: [0, 0], sizes: tensor.shape)
        for ranks in 1...8 {
            let layout = try workload.shardLayout(ranks: ranks)
            var joined: [UInt8] = []
            for rank in 0..<ranks {
                for chunk in layout.chunks(rank: rank) where chunk.fqn == tensor.fqn {
                    var buffer = [UInt8](repeating: 0, count: chunk.byteCount)
                    try buffer.withUnsafeMutableBytes { try content.fill(chunk, into: $0) }
                    joined += buffer
                }
            }
            #expect(joined == whole, "ranks \(ranks)")
        }
    }

    @Test func verifyAcceptsGoodBuffersAndNamesTheFirstFlippedByte() throws {
        let chunk = BenchChunk(fqn: "model.layers.0.attn.out.weight", dtype: .bfloat16, globalShape: [16, 24],
            offsets: [4, 8], sizes: [6, 10])
        var buffer = [UInt8](repeating: 0, count: chunk.byteCount)
        try buffer.withUnsafeMutableBytes { try content.fill(chunk, into: $0) }
        #expect(try buffer.withUnsafeBytes { try content.verify(chunk, buffer: $0) } == nil)

        // Flip the byte of element (row 2, column 3) of the chunk, its second byte.
        let flipped = (2 * 10 + 3) * 2 + 1
        buffer[flipped] ^= 0x40
        let mismatch = try #require(try buffer.withUnsafeBytes { try content.verify(chunk, buffer: $0) })
        #expect(mismatch.fqn == chunk.fqn)
        #expect(mismatch.bufferByteOffset == flipped)
        #expect(mismatch.elementCoordinates == [6, 11])
        #expect(mismatch.globalByteOffset == (6 * 24 + 11) * 2 + 1)
        #expect(mismatch.actual == mismatch.expected ^ 0x40)
        #expect(mismatch.description.contains("model.layers.0.attn.out.weight"))
        #expect(mismatch.description.contains("global byte \((6 * 24 + 11) * 2 + 1)"))

        // A large contiguous chunk: the flip is found past the first scratch block.
        let big = BenchChunk(fqn: "big", dtype: .float32, globalShape: [300, 100], offsets: [10, 0], sizes: [250, 100])
        var large = [UInt8](repeating: 0, count: big.byteCount)
        try large.withUnsafeMutableBytes { try content.fill(big, into: $0) }
        large[large.count - 3] &+= 1
        let late = try #require(try large.withUnsafeBytes { try content.verify(big, buffer: $0) })
        #expect(late.bufferByteOffset == large.count - 3)
        #expect(late.globalByteOffset == 10 * 400 + large.count - 3)
    }

    @Test func invalidRequestsThrowNamedErrors() throws {
        var small = [UInt8](repeating: 0, count: 4)
        #expect(throws: BenchContentError.bufferTooSmall(fqn: "x", needed: 8, actual: 4)) {
            try small.withUnsafeMutableBytes {
                try content.fill(fqn: "x", globalShape: [4], elementSize: 2, offsets: [0], sizes: [4], into: $0)
            }
        }
        #expect(throws: BenchContentError.outOfBounds(fqn: "x", dimension: 0, offset: 3, size: 2, extent: 4)) {
            try small.withUnsafeMutableBytes {
                try content.fill(fqn: "x", globalShape: [4], elementSize: 1, offsets: [3], sizes: [2], into: $0)
            }
        }
        #expect(throws: BenchContentError.dimensionMismatch(fqn: "x", shape: 2, offsets: 1, sizes: 1)) {
            try small.withUnsafeMutableBytes {
                try content.fill(fqn: "x", globalShape: [2, 2], elementSize: 1, offsets: [0], sizes: [1], into: $0)
            }
        }
        #expect(throws: BenchContentError.sizeOverflow(fqn: "x")) {
            try small.withUnsafeMutableBytes {
                try content.fill(fqn: "x", globalShape: [Int.max / 2, 4], elementSize: 1, offsets: [0, 0], sizes: [0, 0], into: $0)
            }
        }
        #expect(throws: BenchContentError.invalidElementSize(fqn: "x", elementSize: 0)) {
            try small.withUnsafeMutableBytes {
                try content.fill(fqn: "x", globalShape: [1], elementSize: 0, offsets: [0], sizes: [1], into: $0)
            }
        }
        // Empty chunks are fine and write nothing.
        try small.withUnsafeMutableBytes {
            try content.fill(fqn: "x", globalShape: [4, 4], elementSize: 4, offsets: [4, 0], sizes: [0, 4], into: $0)
        }
        #expect(small == [0, 0, 0, 0])
    }
}
