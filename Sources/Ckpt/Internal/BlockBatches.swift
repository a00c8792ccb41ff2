import CkptFormat

/// A block of a tensor to load: its C-order bytes go into a batch's buffer at `byteOffset`.
struct BlockRequest: Sendable {
    var fqn: String
    var dtype: DType
    var shape: [Int]
    /// Global coordinates of the block.
    var offsets: [Int]
    var sizes: [Int]
    var byteOffset: Int
    var byteCount: Int
}

/// Packs consecutive blocks into batch buffers of `capacity` bytes: each block 64-byte aligned in
/// its buffer, 4096 from 256 KiB (read straight into it with O_DIRECT); a block that does not
/// fit behind the others starts a new batch.
struct BatchPacker {
    let capacity: Int
    private var used = 0
    private var empty = true

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Where a block of `bytes` goes: whether it starts a new batch, and its offset in the buffer.
    mutating func place(_ bytes: Int) -> (newBatch: Bool, offset: Int) {
        let alignment = bytes >= 256 << 10 ? 4096 : 64
        var offset = (used + alignment - 1) / alignment * alignment
        let newBatch = offset + bytes > capacity && !empty
        if newBatch { offset = 0 }
        used = offset + bytes
        empty = false
        return (newBatch, offset)
    }
}

extension StateDict {
    /// The tensor blocks of one batch, all in `buffer` (one load fills them all).
    init(blocks: [BlockRequest], in buffer: TensorBuffer) {
        self.init()
        var entries: [String: TensorEntry] = [:]
        var order: [String] = []
        for block in blocks where block.byteCount > 0 {
            if entries[block.fqn] == nil {
                entries[block.fqn] = TensorEntry(dtype: block.dtype, globalShape: block.shape, chunks: [])
                order.append(block.fqn)
            }
            entries[block.fqn]?.chunks.append(
                TensorChunk(offsets: block.offsets, sizes: block.sizes, buffer: buffer, byteOffset: block.byteOffset))
        }
        for fqn in order {
            if let entry = entries[fqn] { set(fqn, .tensor(entry)) }
        }
    }
}
