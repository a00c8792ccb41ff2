/// The blocks one rank's file is written from, in file order, packed into batches that load
/// (one `fill` each) into a ring of buffers, up to `buffers.count - 1` batches ahead of the one
/// being written; ``next()`` gives the next block's bytes. A slot loads again once the writer
/// has moved past its batch (appending copies the bytes out). Not thread-safe: one task writes.
final class BatchLoader {
    let buffers: [TensorBuffer]
    let slotBytes: Int
    private let fill: BatchFiller
    private var batches: [[BlockRequest]] = []
    private var loads: [Int: Task<Void, any Error>] = [:]
    private var batch = -1
    private var position = 0

    init(plan: OutputPlan, rank: Int, buffers: [TensorBuffer], fill: @escaping BatchFiller) {
        self.buffers = buffers
        self.slotBytes = buffers.first?.count ?? 0
        self.fill = fill
        var current: [BlockRequest] = []
        var packer = BatchPacker(capacity: slotBytes)
        for entry in plan.entries {
            guard case .tensor(let fqn, let dtype, let shape, let chunks) = entry else { continue }
            for chunk in chunks where chunk.rank == rank {
                for block in ShardedCheckpointWriter.blocks(chunk, dtype: dtype, maxBytes: slotBytes) {
                    let n = block.sizes.reduce(dtype.itemSize, *)
                    let (newBatch, at) = packer.place(n)
                    if newBatch {
                        batches.append(current)
                        current = []
                    }
                    current.append(BlockRequest(
                        fqn: fqn, dtype: dtype, shape: shape, offsets: zip(block.offsets, chunk.offsets).map { $0 + $1 },
                        sizes: block.sizes, byteOffset: at, byteCount: n))
                }
            }
        }
        if !current.isEmpty { batches.append(current) }
        for b in 0..<min(buffers.count - 1, batches.count) { start(b) }
    }

    private func start(_ b: Int) {
        let requests = batches[b], buffer = buffers[b % buffers.count], fill = self.fill
        loads[b] = Task { try await fill(requests, buffer) }
    }

    /// The bytes of the next block (valid until the writer asks for a block of the batch that
    /// reuses its slot).
    func next() async throws -> UnsafeRawBufferPointer {
        if batch < 0 || position == batches[batch].count {
            batch += 1
            position = 0
            guard batch < batches.count else {
                throw CheckpointError(.protocolViolation, "internal error: more blocks asked for than planned")
            }
            try await loads.removeValue(forKey: batch)?.value
            // The slot of the previous batch, now written out, loads the next one.
            if batch + buffers.count - 1 < batches.count { start(batch + buffers.count - 1) }
        }
        let block = batches[batch][position]
        position += 1
        let memory = buffers[batch % buffers.count].bytes
        return UnsafeRawBufferPointer(rebasing: memory[block.byteOffset..<(block.byteOffset + block.byteCount)])
    }

    /// Waits for the loads still running (they write into the buffers).
    func abandon() async {
        for (_, load) in loads { _ = try? await load.value }
        loads.removeAll()
    }
}
