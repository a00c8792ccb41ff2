import Ckpt
import CkptFormat

/// One rank's tensors in memory: every chunk of its layout in one 4096-aligned arena (each chunk
/// at a 4096-aligned offset, so the engine can write it with O_DIRECT straight from memory), and
/// the `StateDict` that describes them.
struct RankState: Sendable {
    /// Where each chunk lives in ``arena``.
    struct Placement: Sendable {
        var chunk: BenchChunk
        var offset: Int
    }

    let rank: Int
    let arena: TensorBuffer
    let placements: [Placement]
    let state: StateDict
    /// Tensor bytes (without alignment padding).
    let tensorBytes: Int

    /// Lays out `chunks` in a fresh, zero-filled arena (the zero fill makes the memory resident,
    /// so it is part of every measurement's baseline). With `content`, fills every chunk.
    /// With `values`, adds the workload's non-tensor values (`.value(.none)` placeholders when
    /// `valuePlaceholders`, as a load request does).
    static func make(
        rank: Int, chunks: [BenchChunk], values: [String: BenchValue], valuePlaceholders: Bool,
        content: BenchContent?
    ) throws -> RankState {
        let alignment = TensorBuffer.alignment
        var placements: [Placement] = []
        placements.reserveCapacity(chunks.count)
        var cursor = 0
        var tensorBytes = 0
        for chunk in chunks {
            placements.append(Placement(chunk: chunk, offset: cursor))
            cursor += (chunk.byteCount + alignment - 1) / alignment * alignment
            tensorBytes += chunk.byteCount
        }
        let arena = TensorBuffer(byteCount: cursor)
        var state = StateDict()
        for placement in placements {
            let chunk = placement.chunk
            if let content {
                try content.fill(chunk, into: UnsafeMutableRawBufferPointer(
                    rebasing: arena.bytes[placement.offset..<(placement.offset + chunk.byteCount)]))
            }
            let entry = TensorEntry(
                dtype: chunk.dtype.dtype, globalShape: chunk.globalShape,
                chunks: [TensorChunk(offsets: chunk.offsets, sizes: chunk.sizes, buffer: arena, byteOffset: placement.offset)])
            state.set(chunk.fqn, .tensor(entry))
        }
        for key in values.keys.sorted() {
            guard let value = values[key] else { continue }
            state.set(key, .value(valuePlaceholders ? .none : value.torchValue))
        }
        return RankState(rank: rank, arena: arena, placements: placements, state: state, tensorBytes: tensorBytes)
    }

    /// Checks the content of the loaded chunks: every row when `full`, else up to three rows per
    /// chunk (first, last, and one chosen by `salt`), which catches misplaced, missing or
    /// zeroed chunks. Returns the bytes checked.
    func verify(content: BenchContent, full: Bool, salt: UInt64) throws -> Int {
        var checked = 0
        for (index, placement) in placements.enumerated() {
            let chunk = placement.chunk
            let base = UnsafeRawBufferPointer(rebasing: arena.bytes[placement.offset..<(placement.offset + chunk.byteCount)])
            let rows = chunk.sizes.first ?? 1
            let rowBytes = rows > 0 ? chunk.byteCount / rows : 0
            if full || chunk.sizes.isEmpty {
                if let mismatch = try content.verify(chunk, buffer: base) {
                    throw BenchRunError.verificationFailed(rank: rank, mismatch: mismatch)
                }
                checked += chunk.byteCount
                continue
            }
            let picks: [Int]
            if rows <= 3 {
                picks = Array(0..<rows)
            } else {
                let word = splitMixWord(salt ^ UInt64(rank), UInt64(index))
                picks = [0, rows - 1, 1 + Int(word % UInt64(rows - 2))]
            }
            for row in picks {
                var offsets = chunk.offsets
                var sizes = chunk.sizes
                let bytes: UnsafeRawBufferPointer
                offsets[0] += row
                sizes[0] = 1
                bytes = UnsafeRawBufferPointer(rebasing: base[(row * rowBytes)..<((row + 1) * rowBytes)])
                let piece = BenchChunk(
                    fqn: chunk.fqn, dtype: chunk.dtype, globalShape: chunk.globalShape, offsets: offsets, sizes: sizes)
                if let mismatch = try content.verify(piece, buffer: bytes) {
                    throw BenchRunError.verificationFailed(rank: rank, mismatch: mismatch)
                }
                checked += bytes.count
            }
        }
        return checked
    }
}

extension BenchDType {
    /// The engine's element type.
    var dtype: DType {
        switch self {
        case .float32: return .float32
        case .bfloat16: return .bfloat16
        }
    }
}

extension BenchValue {
    /// The value as the engine stores it.
    var torchValue: TorchValue {
        switch self {
        case .int(let v): return .int(Int64(v))
        case .double(let v): return .float(v)
        case .string(let v): return .string(v)
        case .bool(let v): return .bool(v)
        }
    }
}
