import CCkptHash
public import CkptIO

/// Appends records to one data file using only 4096-aligned transfers.
///
/// Small pieces are packed into staging buffers from the engine's pool (at most
/// `stagingWritesInFlight` per file, written asynchronously while the next one fills); large
/// tensor payloads, and buffers appended at an aligned position, are written straight from their
/// memory at an aligned file offset (``waitForWrites(from:)`` says when that memory is free). The logical
/// end of the file is tracked; `finish` pads the last block for the aligned write, then truncates
/// the file back to the logical end. Consecutive writes (headers copied out of staging, payloads)
/// are batched into vectored writes of up to one engine block, so the device sees few large
/// requests. Used for `.distcp` files, consolidated files and the benchmark's single file.
///
/// Blocks are preallocated ahead of the writes (``reserve(_:)``, else in steps of
/// ``preallocationStep``), so no write extends the file: on ext4 and XFS an O_DIRECT write past
/// the end of the file is serialized under the inode lock, which would leave one write in flight
/// per file whatever the queue depth. `finish` trims the file to its logical length.
/// Not thread-safe: one task appends.
public final class RecordFileWriter {
    public let engine: IOEngine
    public let file: IOFile
    /// Alignment of every transfer and of direct payloads.
    public static let alignment = 4096
    /// Staging writes in flight (each holds a pool buffer until the kernel is done with it). Two
    /// by default: writers of a save share the pool with the other ranks' writers and with loads.
    /// A consolidation, the pool's only user, raises it.
    public var stagingWritesInFlight = 2

    /// Logical end of the file: where the next byte goes.
    public private(set) var position = 0
    private var staging: IOBuffer?
    private var stagingStart = 0
    private var fill = 0
    /// Staging writes in flight; each releases its pool buffer itself as soon as the kernel is done
    /// with it, so a writer waiting for a new buffer never sits on finished ones (no deadlock when
    /// many writers share one pool).
    private var inFlight: [Task<Void, any Error>] = []
    /// Direct payload writes in flight (from caller memory: they hold no pool buffer), each with
    /// the buffers it reads from. Several records' payloads overlap, so the device queue does not
    /// drain between records.
    private var payloadsInFlight: [(task: Task<Void, any Error>, owners: [ObjectIdentifier])] = []
    private let maxPayloadsInFlight = 16
    /// Writes from memory that outlives them (payloads, copied-out headers), consecutive in the
    /// file, not yet issued: they go out as one vectored write of up to `batchLimit` bytes, so
    /// the device sees a few large requests instead of a header and a payload per record.
    private var batch: [(owner: TensorBuffer, offset: Int, count: Int)] = []
    private var batchStart = 0
    private var batchLength = 0
    /// Largest batched write: one engine block (4 MiB by default, the largest request of common
    /// block devices).
    private var batchLimit: Int { engine.buffers.bufferSize }
    /// File length already preallocated; nil once the file system refused preallocation.
    private var allocatedEnd: Int? = 0
    /// Bytes preallocated at a time when a write goes past what is reserved.
    public var preallocationStep = 64 << 20

    public init(engine: IOEngine, file: IOFile) {
        self.engine = engine
        self.file = file
    }

    /// Preallocates the file up to `bytes` (its expected final length, or more: `finish` trims).
    /// Does nothing where the file system cannot preallocate.
    public func reserve(_ bytes: Int) throws {
        try ensureAllocated(upTo: bytes, exact: true)
    }

    /// Makes sure blocks exist up to `end` before a write that reaches it.
    private func ensureAllocated(upTo end: Int, exact: Bool = false) throws {
        guard let allocated = allocatedEnd, end > allocated else { return }
        let target = exact ? end : max(end, allocated + preallocationStep)
        let rounded = (target + Self.alignment - 1) / Self.alignment * Self.alignment
        allocatedEnd = try engine.preallocate(file, upTo: Int64(rounded)) ? rounded : nil
    }

    /// Copies `bytes` to the end of the file.
    public func append(_ bytes: UnsafeRawBufferPointer) async throws {
        var remaining = bytes
        while !remaining.isEmpty {
            let buffer = try await currentStaging()
            let room = buffer.bytes.count - fill
            let n = min(room, remaining.count)
            UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[fill..<(fill + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: remaining[..<n]))
            fill += n
            position += n
            remaining = UnsafeRawBufferPointer(rebasing: remaining[n...])
            if fill == buffer.bytes.count { try await flushStaging() }
        }
    }

    public func append(_ bytes: [UInt8]) async throws {
        var done = 0
        while done < bytes.count {
            let buffer = try await currentStaging()
            let n = min(buffer.bytes.count - fill, bytes.count - done)
            bytes.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[fill..<(fill + n)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: src[done..<(done + n)]))
            }
            fill += n
            position += n
            done += n
            if fill == buffer.bytes.count { try await flushStaging() }
        }
    }

    /// Appends zero bytes up to the next multiple of the alignment.
    public func padToAlignment() async throws {
        let pad = (Self.alignment - position % Self.alignment) % Self.alignment
        guard pad > 0 else { return }
        let zeros = [UInt8](repeating: 0, count: pad)
        try await append(zeros)
    }

    /// Writes `count` bytes of `buffer` at `byteOffset` straight from its memory. The file
    /// position must be aligned. The payload's hashes are computed on the hash executor while the
    /// transfer runs; the unaligned tail goes through staging.
    func appendPayload(
        _ buffer: TensorBuffer, byteOffset: Int, count: Int, crc: Bool, xxh3: Bool
    ) async throws -> PayloadHashes {
        let alignedCount = try await enqueueDirect(buffer, byteOffset: byteOffset, count: count)
        let hashes = await PayloadHashes.compute(buffer, offset: byteOffset, count: count, crc: crc, xxh3: xxh3)
        try await append(UnsafeRawBufferPointer(rebasing: buffer.bytes[(byteOffset + alignedCount)..<(byteOffset + count)]))
        return hashes
    }

    /// Appends `count` bytes of `buffer` at `byteOffset`: when both the file position and the
    /// memory are aligned, the aligned part is written straight from the buffer's memory (then the
    /// buffer must not change until ``waitForWrites(from:)`` returns), the rest copied into
    /// staging; otherwise all of it is copied.
    public func append(_ buffer: TensorBuffer, byteOffset: Int, count: Int) async throws {
        var direct = 0
        if position % Self.alignment == 0, let base = buffer.bytes.baseAddress,
            Int(bitPattern: base + byteOffset) % Self.alignment == 0
        {
            direct = try await enqueueDirect(buffer, byteOffset: byteOffset, count: count)
        }
        try await append(UnsafeRawBufferPointer(rebasing: buffer.bytes[(byteOffset + direct)..<(byteOffset + count)]))
    }

    /// Queues the write of the aligned part of `count` bytes of `buffer` straight from its memory
    /// at the (aligned) file position; returns its length.
    private func enqueueDirect(_ buffer: TensorBuffer, byteOffset: Int, count: Int) async throws -> Int {
        precondition(position % Self.alignment == 0, "direct payload at unaligned position")
        let alignedCount = count - count % Self.alignment
        guard alignedCount > 0 else { return 0 }
        try await flushStaging()
        try ensureAllocated(upTo: position + alignedCount)
        try await enqueue(at: position, owner: buffer, offset: byteOffset, count: alignedCount)
        position += alignedCount
        stagingStart = position
        return alignedCount
    }

    /// Waits until no write in flight or queued reads from `buffer`'s memory (after which the
    /// caller may change it).
    public func waitForWrites(from buffer: TensorBuffer) async throws {
        let id = ObjectIdentifier(buffer)
        if batch.contains(where: { $0.owner === buffer }) { try await issueBatch() }
        while let index = payloadsInFlight.firstIndex(where: { $0.owners.contains(id) }) {
            try await payloadsInFlight.remove(at: index).task.value
        }
    }

    /// Writes what is staged, waits for every transfer, truncates to the logical end.
    /// Returns the file length.
    public func finish() async throws -> Int {
        try await flushStaging()
        try await issueBatch()
        try await drain()
        if let size = try? engine.size(of: file), size != Int64(position) {
            try engine.truncate(file, to: Int64(position))
        }
        return position
    }

    /// Releases staging buffers after a failure (waits for transfers in flight first).
    public func abandon() async {
        batch.removeAll()
        batchLength = 0
        for task in inFlight + payloadsInFlight.map(\.task) { _ = try? await task.value }
        inFlight.removeAll()
        payloadsInFlight.removeAll()
        if let staging { engine.buffers.release(staging) }
        staging = nil
    }

    private func currentStaging() async throws -> IOBuffer {
        if let staging { return staging }
        if inFlight.count >= max(1, stagingWritesInFlight) {
            try await inFlight.removeFirst().value
        }
        let buffer = try await engine.buffers.acquire()
        staging = buffer
        return buffer
    }

    /// Starts the write of the staged bytes (padded with zeros to the alignment).
    private func flushStaging() async throws {
        guard let buffer = staging else { return }
        staging = nil
        guard fill > 0 else {
            engine.buffers.release(buffer)
            return
        }
        let padded = (fill + Self.alignment - 1) / Self.alignment * Self.alignment
        if padded > fill {
            UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[fill..<padded]).initializeMemory(as: UInt8.self, repeating: 0)
        }
        do {
            try ensureAllocated(upTo: stagingStart + padded)
        } catch {
            engine.buffers.release(buffer)
            throw error
        }
        let at = Int64(stagingStart)
        let engine = self.engine, file = self.file
        // The next staging buffer starts where this one's logical bytes end; a partially filled
        // buffer is only flushed at an aligned position or at the end of the file.
        stagingStart += fill
        fill = 0
        if padded <= Self.smallWriteLimit {
            // A few blocks (typically a record's header between two direct payloads): copied out
            // so the pool buffer is free at once, and queued with the payloads. Waiting for it
            // like a staging write would stall the file's pipeline behind the device queue.
            let copy = TensorBuffer(uninitializedByteCount: padded)
            copy.bytes.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer.bytes[..<padded]))
            engine.buffers.release(buffer)
            try await enqueue(at: Int(at), owner: copy, offset: 0, count: padded)
            return
        }
        inFlight.append(Task {
            defer { engine.buffers.release(buffer) }
            try await engine.write(file, at: at, from: UnsafeRawBufferPointer(rebasing: buffer.bytes[..<padded]))
        })
    }

    /// Queues a write of `count` bytes of `owner` at `offset` to file offset `at`: joins the
    /// batch when it follows it, else the batch is issued first; a full batch is issued.
    private func enqueue(at: Int, owner: TensorBuffer, offset: Int, count: Int) async throws {
        if !batch.isEmpty, at != batchStart + batchLength || batchLength + count > batchLimit {
            try await issueBatch()
        }
        if batch.isEmpty { batchStart = at }
        batch.append((owner, offset, count))
        batchLength += count
        if batchLength >= batchLimit { try await issueBatch() }
    }

    /// Starts the batched writes as one vectored transfer (at most `maxPayloadsInFlight` in
    /// flight per file).
    private func issueBatch() async throws {
        guard !batch.isEmpty else { return }
        let pieces = batch
        let at = Int64(batchStart)
        batch.removeAll(keepingCapacity: true)
        batchLength = 0
        let engine = self.engine, file = self.file
        let task = Task {
            let segments = pieces.map { UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer($0.owner.bytes)[$0.offset..<($0.offset + $0.count)]) }
            try await engine.perform([.writev(file, offset: at, from: segments)])
        }
        payloadsInFlight.append((task, pieces.map { ObjectIdentifier($0.owner) }))
        if payloadsInFlight.count > maxPayloadsInFlight {
            try await payloadsInFlight.removeFirst().task.value
        }
    }

    /// Staged pieces up to this size are copied out of the pool buffer and written like payloads.
    static let smallWriteLimit = 64 << 10

    private func drain() async throws {
        var firstError: (any Error)?
        for task in inFlight + payloadsInFlight.map(\.task) {
            do { try await task.value } catch { if firstError == nil { firstError = error } }
        }
        inFlight.removeAll()
        payloadsInFlight.removeAll()
        if let firstError { throw firstError }
    }
}

/// Running hashes of a payload.
struct PayloadHashes {
    var crc32: UInt32 = 0
    var xxh3: UInt64 = 0

    static func compute(_ bytes: UnsafeRawBufferPointer, crc: Bool, xxh3: Bool) -> PayloadHashes {
        var h = PayloadHashes()
        guard let base = bytes.baseAddress, bytes.count > 0 else { return h }
        if crc { h.crc32 = ckpt_crc32_update(0, base, bytes.count) }
        if xxh3 { h.xxh3 = ckpt_xxh3_64(base, bytes.count) }
        return h
    }
}
