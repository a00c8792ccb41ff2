import Synchronization

/// A save running in the background after ``Checkpointer/saveAsync(_:to:)`` returned.
public final class SaveHandle: Sendable {
    let task: Task<SaveReport, any Error>
    /// Bytes of the rank's state copied into engine memory (held until the save commits).
    public let stagedBytes: Int
    /// Seconds the caller was blocked staging (copying) the state.
    public let stagingSeconds: Double

    init(task: Task<SaveReport, any Error>, stagedBytes: Int, stagingSeconds: Double) {
        self.task = task
        self.stagedBytes = stagedBytes
        self.stagingSeconds = stagingSeconds
    }

    /// Waits for the commit; rethrows the save's error.
    public func wait() async throws -> SaveReport {
        try await task.value
    }
}

struct AsyncSaveState: Sendable {
    var previous: Task<SaveReport, any Error>?
    /// Staging memory kept from the previous async save and reused when large enough.
    var arena: TensorBuffer?
}

extension Checkpointer {
    /// Starts a save and returns as soon as this rank's state is staged (copied into memory the
    /// engine owns), so that training can modify its tensors again. Await the returned handle for
    /// the commit. A new async save first waits for the previous one (whose outcome, error
    /// included, stays with the previous handle). Staging memory is the size of the rank's shard,
    /// reused from one save to the next.
    public func saveAsync(_ state: StateDict, to directory: String) async throws -> SaveHandle {
        let previous = asyncState.withLock { $0.previous }
        _ = await previous?.result
        let clock = ContinuousClock()
        let start = clock.now
        let (staged, bytes) = stage(state)
        let stagingSeconds = (clock.now - start).seconds
        // Below the caller's priority: the background save yields to training (and, with
        // in-process ranks, to the other ranks still staging).
        let task = Task(priority: .background) { try await self.save(staged, to: directory) }
        asyncState.withLock { $0.previous = task }
        return SaveHandle(task: task, stagedBytes: bytes, stagingSeconds: stagingSeconds)
    }

    /// Allocates (and touches every page of) the staging memory ``saveAsync(_:to:)`` needs for
    /// states shaped like `state`, so that the first async save only copies. Call it once at
    /// start-up; later saves reuse the memory. Returns the bytes reserved.
    @discardableResult
    public func reserveAsyncStaging(for state: StateDict) -> Int {
        let total = Self.stagingBytes(state)
        let (arena, fresh) = stagingArena(ofAtLeast: total)
        // Fault the pages in now rather than during the first save's copy.
        if fresh { arena.bytes.initializeMemory(as: UInt8.self, repeating: 0) }
        return total
    }

    /// The kept staging arena if it holds `bytes`, else a new one (kept for the next saves).
    private func stagingArena(ofAtLeast bytes: Int) -> (arena: TensorBuffer, fresh: Bool) {
        asyncState.withLock { s in
            if let arena = s.arena, arena.count >= bytes { return (arena, false) }
            let arena = TensorBuffer(uninitializedByteCount: bytes)
            s.arena = arena
            return (arena, true)
        }
    }

    /// Bytes of staging memory for `state`: every tensor chunk at a 4096-aligned offset.
    static func stagingBytes(_ state: StateDict) -> Int {
        let alignment = TensorBuffer.alignment
        var total = 0
        for entry in state.entries {
            guard case .tensor(let tensor) = entry.value else { continue }
            for chunk in tensor.chunks {
                let n = chunk.elementCount * tensor.dtype.itemSize
                total += (n + alignment - 1) / alignment * alignment
            }
        }
        return total
    }

    /// Copies every tensor chunk of `state` into one aligned arena (each chunk at a 4096-aligned
    /// offset, so the save can write it with O_DIRECT without further staging).
    func stage(_ state: StateDict) -> (StateDict, Int) {
        let alignment = TensorBuffer.alignment
        let total = Self.stagingBytes(state)
        let arena = stagingArena(ofAtLeast: total).arena
        var staged = StateDict()
        var cursor = 0
        for entry in state.entries {
            switch entry.value {
            case .value:
                staged.set(entry.fqn, path: entry.path, entry.value)
            case .tensor(let tensor):
                var chunks: [TensorChunk] = []
                for chunk in tensor.chunks {
                    let n = chunk.elementCount * tensor.dtype.itemSize
                    if n > 0, let src = chunk.buffer.bytes.baseAddress, let dst = arena.bytes.baseAddress {
                        (dst + cursor).copyMemory(from: src + chunk.byteOffset, byteCount: n)
                    }
                    chunks.append(TensorChunk(offsets: chunk.offsets, sizes: chunk.sizes, buffer: arena, byteOffset: cursor))
                    cursor += (n + alignment - 1) / alignment * alignment
                }
                staged.set(
                    entry.fqn, path: entry.path,
                    .tensor(TensorEntry(dtype: tensor.dtype, globalShape: tensor.globalShape, chunks: chunks)))
            }
        }
        return (staged, total)
    }
}
