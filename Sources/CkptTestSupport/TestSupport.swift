public import CkptFormat
import CkptPlan
import Foundation
public import Ckpt
public import CkptIO

/// Deterministic PRNG for property tests (SplitMix64).
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }

    public mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }

    public mutating func pick<T>(_ values: [T]) -> T { values[int(0...(values.count - 1))] }

    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var index = 0
        while index < count {
            var word = next()
            for _ in 0..<8 where index < count {
                out[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return out
    }
}

/// A fresh temporary directory, removed by `cleanup()`.
public struct TempDir: Sendable {
    public let path: String
    public init(_ label: String = "ckpt-test") {
        path = FileManager.default.temporaryDirectory.path + "/\(label)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    public func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// A global tensor held in memory, with block extraction in C order.
public struct GlobalTensor: Sendable {
    public var fqn: String
    public var dtype: DType
    public var shape: [Int]
    public var bytes: [UInt8]

    public init(fqn: String, dtype: DType, shape: [Int], rng: inout SplitMix64) {
        self.fqn = fqn
        self.dtype = dtype
        self.shape = shape
        let n = shape.reduce(1, *) * dtype.itemSize
        bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// Visits the contiguous runs of a block: (byte offset in the global tensor, byte offset in
    /// the block, byte length).
    public func forEachRow(offsets: [Int], sizes: [Int], _ body: (Int, Int, Int) -> Void) {
        ChunkBox(offsets: offsets, sizes: sizes).forEachContiguousRun(inTensorOfShape: shape, elementSize: dtype.itemSize) {
            body($0, $1, $2)
            return true
        }
    }

    /// Rank `rank`'s block of rows when `ranks` ranks split the first dimension evenly (FSDP
    /// style), as a tensor entry over a fresh buffer holding those rows.
    public func rowShard(_ rank: Int, of ranks: Int) -> TensorEntry {
        let rows = shape[0]
        let range = (rows * rank / ranks)..<(rows * (rank + 1) / ranks)
        let rowBytes = shape.dropFirst().reduce(dtype.itemSize, *)
        let buffer = TensorBuffer(byteCount: range.count * rowBytes)
        buffer.bytes.copyBytes(from: bytes[(range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)])
        var offsets = Array(repeating: 0, count: shape.count)
        offsets[0] = range.lowerBound
        var sizes = shape
        sizes[0] = range.count
        return TensorEntry(dtype: dtype, globalShape: shape, chunks: [TensorChunk(offsets: offsets, sizes: sizes, buffer: buffer)])
    }

    public func block(offsets: [Int], sizes: [Int]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: sizes.reduce(1, *) * dtype.itemSize)
        forEachRow(offsets: offsets, sizes: sizes) { g, b, n in
            for i in 0..<n { out[b + i] = bytes[g + i] }
        }
        return out
    }
}

/// Random chunk grids over `ranks` ranks: each rank gets a list of (offsets, sizes) blocks that
/// together tile the tensor (some replicated on several ranks, some ranks with none).
public enum RandomGrid {
    public static func make(shape: [Int], ranks: Int, rng: inout SplitMix64) -> [[(offsets: [Int], sizes: [Int])]] {
        var out = Array(repeating: [(offsets: [Int], sizes: [Int])](), count: ranks)
        if shape.isEmpty || Int.random(in: 0..<8, using: &rng) == 0 {
            // Replicated (0-d tensors always): every rank holds the whole tensor.
            for r in 0..<ranks { out[r].append((Array(repeating: 0, count: shape.count), shape)) }
            return out
        }
        // Cut each dimension into pieces (possibly empty ones), at most `ranks` blocks in total.
        var cuts: [[Int]] = []
        var blocks = 1
        for extent in shape {
            let maxPieces = max(1, min(ranks / blocks, 4))
            let pieces = Int.random(in: 1...maxPieces, using: &rng)
            var points = (0..<(pieces - 1)).map { _ in Int.random(in: 0...extent, using: &rng) }.sorted()
            if Bool.random(using: &rng) && pieces > 1 {
                // torch.chunk style even split instead.
                let step = (extent + pieces - 1) / pieces
                points = (1..<pieces).map { min($0 * step, extent) }
            }
            cuts.append([0] + points + [extent])
            blocks *= pieces
        }
        var boxes: [(offsets: [Int], sizes: [Int])] = [([], [])]
        for c in cuts {
            var next: [(offsets: [Int], sizes: [Int])] = []
            for b in boxes {
                for k in 0..<(c.count - 1) { next.append((b.offsets + [c[k]], b.sizes + [c[k + 1] - c[k]])) }
            }
            boxes = next
        }
        // DCP identifies saved chunks by offsets; empty blocks may share offsets with a real one:
        // keep the non-empty block.
        boxes.sort { !$0.sizes.contains(0) && $1.sizes.contains(0) }
        var seen = Set<[Int]>()
        boxes = boxes.filter { seen.insert($0.offsets).inserted }
        let shuffledRanks = (0..<ranks).shuffled(using: &rng)
        for (i, box) in boxes.enumerated() {
            out[shuffledRanks[i % ranks]].append(box)
        }
        return out
    }
}

public func makeEngine(bufferSize: Int = 64 << 10, bufferCount: Int = 8, backend: IOEngineConfiguration.BackendChoice = .automatic) throws -> IOEngine {
    try IOEngine(configuration: IOEngineConfiguration(backend: backend, queueDepth: 16, bufferSize: bufferSize, bufferCount: bufferCount))
}

/// Runs `body` on `world` in-process ranks; returns results in rank order.
public func onRanks<T: Sendable>(_ world: Int, _ body: @escaping @Sendable (any Communicator) async throws -> T) async throws -> [T] {
    let group = InProcessGroup(worldSize: world)
    return try await withThrowingTaskGroup(of: (Int, T).self) { tasks in
        for rank in 0..<world {
            tasks.addTask { (rank, try await body(group.communicator(rank: rank))) }
        }
        var out: [(Int, T)] = []
        for try await r in tasks { out.append(r) }
        return out.sorted { $0.0 < $1.0 }.map(\.1)
    }
}
