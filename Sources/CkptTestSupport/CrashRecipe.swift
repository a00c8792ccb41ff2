public import Ckpt
public import CkptFormat

/// The deterministic state the crash child saves: a few tensors (several dtypes, row-sharded over
/// the ranks as `torch.chunk` does, plus one replicated tensor) and two values, all derived from a
/// seed. Shared by `ckpt-crash-child` and `CkptReliabilityTests`.
public enum CrashRecipe {
    public struct Tensor: Sendable {
        public var fqn: String
        public var dtype: DType
        public var shape: [Int]
        public var bytes: [UInt8]

        public var rowBytes: Int { shape.dropFirst().reduce(1, *) * dtype.itemSize }
    }

    public static func tensors(seed: UInt64, rows: Int) -> [Tensor] {
        let specs: [(String, DType, [Int])] = [
            ("model.embed.weight", .float32, [rows, 64]),
            ("model.layers.0.w", .bfloat16, [rows / 2 + 1, 48]),
            ("model.layers.0.b", .float32, [rows]),
            ("optim.state.0.exp_avg", .float64, [rows, 16]),
            ("model.scale", .float32, [7]),
        ]
        return specs.enumerated().map { i, spec in
            var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i))
            let n = spec.2.reduce(1, *) * spec.1.itemSize
            let bytes = [UInt8](unsafeUninitializedCapacity: n) { buffer, count in
                var k = 0
                while k < n {
                    var word = rng.next()
                    for _ in 0..<min(8, n - k) {
                        buffer[k] = UInt8(truncatingIfNeeded: word)
                        word >>= 8
                        k += 1
                    }
                }
                count = n
            }
            return Tensor(fqn: spec.0, dtype: spec.1, shape: spec.2, bytes: bytes)
        }
    }

    /// Rows `[lo, hi)` of a tensor held by `rank` of `ranks` (torch.chunk split of dim 0); the
    /// last tensor (`model.scale`) is replicated on every rank.
    public static func rows(of tensor: Tensor, index: Int, rank: Int, ranks: Int) -> Range<Int> {
        let extent = tensor.shape[0]
        if index == 4 { return 0..<extent }
        let step = (extent + ranks - 1) / ranks
        let lo = min(rank * step, extent)
        return lo..<min(lo + step, extent)
    }

    public static func values(seed: UInt64) -> [(String, TorchValue)] {
        [("trainer.step", .int(Int64(seed % 1_000_000))), ("trainer.note", .string("crash-seed-\(seed)"))]
    }

    /// One rank's state dict.
    public static func state(seed: UInt64, rows: Int, rank: Int, ranks: Int) -> StateDict {
        var state = StateDict()
        for (i, tensor) in tensors(seed: seed, rows: rows).enumerated() {
            let range = Self.rows(of: tensor, index: i, rank: rank, ranks: ranks)
            var chunks: [TensorChunk] = []
            if !range.isEmpty {
                let buffer = TensorBuffer(byteCount: range.count * tensor.rowBytes)
                tensor.bytes.withUnsafeBytes { all in
                    buffer.bytes.copyMemory(from: UnsafeRawBufferPointer(
                        rebasing: all[(range.lowerBound * tensor.rowBytes)..<(range.upperBound * tensor.rowBytes)]))
                }
                var offsets = [Int](repeating: 0, count: tensor.shape.count)
                offsets[0] = range.lowerBound
                var sizes = tensor.shape
                sizes[0] = range.count
                chunks.append(TensorChunk(offsets: offsets, sizes: sizes, buffer: buffer))
            }
            state.set(tensor.fqn, .tensor(TensorEntry(dtype: tensor.dtype, globalShape: tensor.shape, chunks: chunks)))
        }
        for (fqn, value) in values(seed: seed) { state.set(fqn, .value(value)) }
        return state
    }

    /// FNV-1a 64 of a tensor's bytes (a fingerprint for drift detection, not a checksum).
    public static func fingerprint(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
