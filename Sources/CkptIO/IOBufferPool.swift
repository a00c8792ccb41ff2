import CCkptURing
import Glibc
import Synchronization

/// A bounded pool of 4096-aligned I/O buffers.
///
/// `acquire()` suspends while every buffer is lent out, so memory stays bounded whatever the
/// amount of data moved. The pool reports the bytes lent out now and at peak.
public final class IOBufferPool: Sendable {
    /// Alignment of every buffer (the O_DIRECT requirement on every Linux file system here).
    public static let alignment = AlignedMemory.alignment

    struct State {
        var free: [Int]
        var held: [Bool]
        var heldCount = 0
        var peakHeldCount = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<IOBuffer, any Error>)] = []
        var nextWaiter: UInt64 = 0
        var closed = false
    }

    /// Size of each buffer in bytes.
    public let bufferSize: Int
    /// Number of buffers.
    public let bufferCount: Int
    /// What the pool did about NUMA placement.
    public let numaReport: String
    let storage: [Storage]
    let state: Mutex<State>

    /// `@unchecked Sendable`: an owned allocation freed exactly once by the pool's deinit.
    struct Storage: @unchecked Sendable {
        let bytes: UnsafeMutableRawBufferPointer
        let numa: Bool
    }

    /// Allocates `count` buffers of `size` bytes (rounded up to 4096), on the calling thread's
    /// NUMA node when `numaLocal` and the machine has more than one node.
    public init(bufferSize size: Int, count: Int, numaLocal: Bool = true) throws(IOError) {
        let size = max(Self.alignment, (size + Self.alignment - 1) / Self.alignment * Self.alignment)
        let count = max(1, count)
        bufferSize = size
        bufferCount = count
        let nodes = Int(ckpt_numa_node_count())
        let available = ckpt_numa_available() >= 0
        var useNuma = false
        var node: Int32 = 0
        if !numaLocal {
            numaReport = "NUMA placement disabled by configuration"
        } else if !available {
            numaReport = "libnuma unavailable (numa_available() < 0): default placement"
        } else if nodes <= 1 {
            numaReport = "1 node: NUMA placement not needed"
        } else {
            node = ckpt_numa_current_node()
            useNuma = true
            numaReport = "\(nodes) nodes: buffers allocated on node \(node) (node of the calling thread)"
        }
        var made: [Storage] = []
        for _ in 0..<count {
            var pointer: UnsafeMutableRawPointer?
            if useNuma {
                pointer = ckpt_numa_alloc_onnode(size, node)
            } else {
                pointer = AlignedMemory.allocate(byteCount: size)
            }
            guard let pointer else {
                for s in made { Self.free(s) }
                throw IOError.make(.other, "could not allocate \(count) I/O buffers of \(size) bytes")
            }
            made.append(Storage(bytes: UnsafeMutableRawBufferPointer(start: pointer, count: size), numa: useNuma))
        }
        storage = made
        state = Mutex(State(free: Array((0..<count).reversed()), held: Array(repeating: false, count: count)))
    }

    deinit {
        for s in storage { Self.free(s) }
    }

    private static func free(_ s: Storage) {
        guard let base = s.bytes.baseAddress else { return }
        if s.numa { ckpt_numa_free(base, s.bytes.count) } else { AlignedMemory.deallocate(base) }
    }

    /// Total bytes of the pool.
    public var capacityBytes: Int { bufferSize * bufferCount }
    /// Bytes lent out now.
    public var heldBytes: Int { state.withLock { $0.heldCount } * bufferSize }
    /// Most bytes lent out at once since creation (or `resetPeak()`).
    public var peakHeldBytes: Int { state.withLock { $0.peakHeldCount } * bufferSize }
    /// Resets the peak to the bytes held now.
    public func resetPeak() { state.withLock { $0.peakHeldCount = $0.heldCount } }

    /// Every buffer's memory (for io_uring registration).
    var allBuffers: [UnsafeMutableRawBufferPointer] { storage.map(\.bytes) }

    /// The index of the pool buffer containing `address` (and `length` bytes after it), or nil.
    func bufferIndex(containing address: UnsafeRawPointer, length: Int) -> Int? {
        for (i, s) in storage.enumerated() {
            guard let base = s.bytes.baseAddress else { continue }
            let start = UnsafeRawPointer(base)
            if address >= start && address + length <= start + s.bytes.count { return i }
        }
        return nil
    }

    private func take(_ s: inout State) -> IOBuffer? {
        guard let i = s.free.popLast() else { return nil }
        s.held[i] = true
        s.heldCount += 1
        s.peakHeldCount = max(s.peakHeldCount, s.heldCount)
        return IOBuffer(index: i, bytes: storage[i].bytes)
    }

    /// Takes a buffer without waiting, or nil when all are lent out.
    public func tryAcquire() -> IOBuffer? {
        state.withLock { s in s.closed ? nil : take(&s) }
    }

    /// Takes a buffer, suspending until one is released. Throws `CancellationError` when the
    /// task is cancelled while waiting and `IOError.Code.shutdown` once the engine shut down.
    public func acquire() async throws -> IOBuffer {
        let id = state.withLock { s -> UInt64 in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<IOBuffer, any Error>) in
                enum Outcome { case got(IOBuffer), closed, cancelled, wait }
                let outcome = state.withLock { s -> Outcome in
                    if s.closed { return .closed }
                    if Task.isCancelled { return .cancelled }
                    if s.waiters.isEmpty, let b = take(&s) { return .got(b) }
                    s.waiters.append((id, c))
                    return .wait
                }
                switch outcome {
                case .got(let b): c.resume(returning: b)
                case .closed: c.resume(throwing: IOError.make(.shutdown, "buffer pool closed: the engine was shut down"))
                case .cancelled: c.resume(throwing: CancellationError())
                case .wait: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<IOBuffer, any Error>? in
                guard let k = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: k).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Gives a buffer back (releasing a buffer that is not lent out is ignored).
    public func release(_ buffer: IOBuffer) {
        let handoff = state.withLock { s -> (CheckedContinuation<IOBuffer, any Error>, IOBuffer)? in
            guard buffer.index >= 0, buffer.index < s.held.count, s.held[buffer.index] else { return nil }
            if !s.waiters.isEmpty {
                // Hand the buffer straight to the longest waiter: held count does not change.
                let w = s.waiters.removeFirst()
                return (w.continuation, IOBuffer(index: buffer.index, bytes: storage[buffer.index].bytes))
            }
            s.held[buffer.index] = false
            s.heldCount -= 1
            s.free.append(buffer.index)
            return nil
        }
        if let (c, b) = handoff { c.resume(returning: b) }
    }

    /// Fails every waiter and every later `acquire` with `IOError.Code.shutdown`.
    func close() {
        let waiters = state.withLock { s -> [CheckedContinuation<IOBuffer, any Error>] in
            s.closed = true
            defer { s.waiters.removeAll() }
            return s.waiters.map(\.continuation)
        }
        for c in waiters { c.resume(throwing: IOError.make(.shutdown, "buffer pool closed: the engine was shut down")) }
    }
}
