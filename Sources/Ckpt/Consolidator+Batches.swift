import CCkptHash
import CkptFormat
import CkptIO
import CkptPlan

/// The batch path of a consolidation (checksum-verifying and buffered ones, and layouts the
/// streaming path's buffers cannot hold): tensors cut in C-order blocks, packed into batches
/// that load into a ring of slots ahead of the one being written.
extension Consolidator {
    /// Buffers the piece budget is split into (batches loading ahead: one less).
    static let slots = 4

    /// One piece of the output in order: a block of a checkpoint tensor (at `at` in its batch's
    /// buffer) or a `meta.pt` storage; `first`/`last` mark its source's storage boundaries.
    struct Item {
        var source: Int
        var offsets: [Int] = []
        var sizes: [Int] = []
        var bytes = 0
        var at = 0
        var first = false
        var last = false
    }

    /// Consecutive items whose checkpoint blocks load together into one buffer.
    struct Batch {
        var items: [Item] = []
        var bytes = 0
    }

    /// Cuts the sources into C-order blocks of at most `maxBytes` and packs consecutive blocks
    /// (of several small tensors, or one large one) into batches of at most `maxBytes`, each
    /// block 64-byte (4096 from 256 KiB) aligned in its buffer.
    static func batches(_ sources: [Source], maxBytes: Int) -> [Batch] {
        var batches: [Batch] = []
        var current = Batch()
        var packer = BatchPacker(capacity: maxBytes)
        for (index, source) in sources.enumerated() {
            var items: [Item] = []
            switch source {
            case .meta:
                items = [Item(source: index)]
            case .checkpoint(_, let dtype, let shape):
                for block in blocks(shape: shape, elementSize: dtype.itemSize, maxBytes: maxBytes, granule: RecordFileWriter.alignment) {
                    items.append(Item(
                        source: index, offsets: block.offsets, sizes: block.sizes,
                        bytes: block.sizes.reduce(1, *) * dtype.itemSize))
                }
            }
            for (k, var item) in items.enumerated() {
                item.first = k == 0
                item.last = k == items.count - 1
                let (newBatch, at) = packer.place(item.bytes)
                if newBatch {
                    batches.append(current)
                    current = Batch()
                }
                item.at = at
                current.bytes = item.at + item.bytes
                current.items.append(item)
            }
        }
        if !current.items.isEmpty { batches.append(current) }
        return batches
    }

    /// Starts loading a batch's blocks into `buffer` (one load for all of them); with `crc`, then
    /// computes each item's CRC-32 (0 for items that are not checkpoint blocks), so that the zip's
    /// checksums are computed by the loading tasks, beside the writing loop.
    static func prefetch(
        _ batch: Batch, sources: [Source], into buffer: TensorBuffer, reader: CheckpointReader, crc: Bool
    ) -> Task<[UInt32], any Error> {
        let request = StateDict(blocks: batch.items.compactMap { item in
            guard case .checkpoint(let fqn, let dtype, let shape) = sources[item.source] else { return nil }
            return BlockRequest(
                fqn: fqn, dtype: dtype, shape: shape, offsets: item.offsets, sizes: item.sizes, byteOffset: item.at,
                byteCount: item.bytes)
        }, in: buffer)
        let items = batch.items
        let isBlock = items.map { item in
            if case .checkpoint = sources[item.source] { return item.bytes > 0 } else { return false }
        }
        return Task {
            if request.count > 0 { _ = try await reader.load(into: request) }
            guard crc else { return [] }
            return zip(items, isBlock).map { item, block in
                block ? ckpt_crc32_update(0, buffer.bytes.baseAddress.map { $0 + item.at }, item.bytes) : 0
            }
        }
    }

    /// C-order blocks of a tensor, each contiguous and at most `maxBytes` (one element at least).
    /// Where it fits, a block's length is a multiple of `granule` bytes (so that consecutive blocks
    /// of a tensor stay aligned in a file).
    static func blocks(shape: [Int], elementSize: Int, maxBytes: Int, granule: Int = 1) -> [(offsets: [Int], sizes: [Int])] {
        if shape.isEmpty { return [([], [])] }
        if shape.contains(0) { return [(Array(repeating: 0, count: shape.count), shape)] }
        // Split dimension k: the outermost whose trailing block (dims k+1...) fits.
        var k = shape.count - 1
        var inner = elementSize
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            if inner * shape[d] > maxBytes { k = d; break }
            inner *= shape[d]
            k = d
        }
        let trailing = shape[(k + 1)...].reduce(elementSize, *)
        var step = max(1, maxBytes / trailing)
        let rows = granule / gcd(trailing, granule)
        if step >= rows { step -= step % rows }
        if k == 0 && step >= shape[0] { return [(Array(repeating: 0, count: shape.count), shape)] }
        var out: [(offsets: [Int], sizes: [Int])] = []
        var index = [Int](repeating: 0, count: k)  // over dims 0..<k
        while true {
            var start = 0
            while start < shape[k] {
                let len = min(step, shape[k] - start)
                let offsets = index + [start] + Array(repeating: 0, count: shape.count - k - 1)
                let sizes = Array(repeating: 1, count: k) + [len] + Array(shape[(k + 1)...])
                out.append((offsets, sizes))
                start += len
            }
            guard RowMajorIndex.advance(&index, limits: shape) else { break }
        }
        return out
    }

    static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }
}
