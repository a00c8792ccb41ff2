import CCkptURing
import Glibc
import Synchronization

/// io_uring through the C shim: one ring, batched submission under a mutex, one reaper thread
/// that bridges completions to the waiting tasks.
final class URingBackend: IOBackend {
    /// `@unchecked Sendable`: the submission side of the ring is only used with `state` locked;
    /// the completion side only by the reaper thread (liburing supports one submitter and one
    /// completer concurrently); the ring is destroyed after the reaper is joined.
    struct Ring: @unchecked Sendable { let pointer: OpaquePointer }

    struct Slot {
        var collector: BatchCollector
        var index: Int
    }

    struct State {
        var inflight: [UInt64: Slot] = [:]
        var nextID: UInt64 = 1
        var shuttingDown = false
        var reaperDone = false
        var needsSubmit = false
        var submitCalls = 0
        var reaperExit: CheckedContinuation<Void, Never>?
    }

    static let sentinel = UInt64.max
    static let cancelTag: UInt64 = 1 << 62

    let kind = IOBackendKind.ioUring
    let ring: Ring
    let syscalls: Syscalls
    let limiter: AsyncLimiter
    let state = Mutex(State())
    let reaper = Mutex<JoinableThread?>(nil)
    let destroyed = Atomic<Bool>(false)
    /// Set while prepared SQEs wait for a retried submission (the reaper then polls quickly).
    let retryPending = Atomic<Bool>(false)

    /// Sets up the ring (through the funnel); throws the -errno of io_uring_queue_init.
    init(queueDepth: Int, syscalls: Syscalls) throws(IOError) {
        self.syscalls = syscalls
        let entries = UInt32(max(2, min(4096, queueDepth * 2)))
        let (pointer, rc) = syscalls.ringCreate(entries: entries)
        guard rc == 0, let pointer else {
            throw IOError.system("io_uring_queue_init(\(entries))", errno: .init(rawValue: -rc), path: nil)
        }
        ring = Ring(pointer: pointer)
        limiter = AsyncLimiter(capacity: max(1, queueDepth))
        guard let thread = JoinableThread({ [self] in self.reap() }) else {
            ckpt_ring_destroy(pointer)
            throw IOError.make(.other, "could not start the io_uring reaper thread")
        }
        reaper.withLock { $0 = thread }
    }

    var submitCalls: Int { state.withLock { $0.submitCalls } }

    /// io_uring_register_buffers; returns 0 or -errno.
    func registerBuffers(_ buffers: [UnsafeMutableRawBufferPointer]) -> Int32 {
        let bases: [UnsafeMutableRawPointer?] = buffers.map { $0.baseAddress }
        let lengths = buffers.map { $0.count }
        return state.withLock { _ in
            bases.withUnsafeBufferPointer { b in
                lengths.withUnsafeBufferPointer { l in
                    ckpt_ring_register_buffers(ring.pointer, b.baseAddress, l.baseAddress, UInt32(buffers.count))
                }
            }
        }
    }

    // MARK: Submission

    private func prepare(_ op: RawOp, userData: UInt64) -> Int32 {
        switch op.kind {
        case .read, .write:
            if let vector = op.vector {
                return ckpt_ring_prep_rwv(
                    ring.pointer, op.kind == .read ? Int32(CKPT_RING_READ) : Int32(CKPT_RING_WRITE), op.fd,
                    vector.iovecs, UInt32(vector.count), UInt64(op.offset), userData)
            }
            return ckpt_ring_prep_rw(
                ring.pointer, op.kind == .read ? Int32(CKPT_RING_READ) : Int32(CKPT_RING_WRITE), op.fd,
                op.address, UInt32(op.length), UInt64(op.offset), op.fixedIndex, userData)
        case .fsync, .fdatasync:
            return ckpt_ring_prep_fsync(ring.pointer, op.fd, op.kind == .fdatasync ? 1 : 0, userData)
        }
    }

    /// Submits what is prepared; transient failures leave the SQEs queued for the reaper to retry.
    private func submit(_ s: inout State) {
        let rc = ckpt_ring_submit(ring.pointer)
        s.submitCalls += 1
        s.needsSubmit = rc < 0
        retryPending.store(rc < 0, ordering: .relaxed)
    }

    func run(_ ops: [RawOp]) async -> [Int] {
        if ops.isEmpty { return [] }
        if ops.count > limiter.capacity {
            // Bounded in flight: run in chunks of the queue depth.
            var results: [Int] = []
            results.reserveCapacity(ops.count)
            var start = 0
            while start < ops.count {
                let end = min(ops.count, start + limiter.capacity)
                results += await run(Array(ops[start..<end]))
                start = end
            }
            return results
        }
        await limiter.acquire(ops.count)
        let collector = BatchCollector(count: ops.count)
        let raw = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<[Int], Never>) in
                guard collector.install(c) else {
                    c.resume(returning: Array(repeating: -Int(ECANCELED), count: ops.count))
                    return
                }
                let failed: [(Int, Int)] = state.withLock { s in
                    if s.shuttingDown || s.reaperDone {
                        return ops.indices.map { ($0, -Int(ESHUTDOWN)) }
                    }
                    var failed: [(Int, Int)] = []
                    var prepared = 0
                    for (i, op) in ops.enumerated() {
                        let ud = s.nextID
                        s.nextID += 1
                        var rc = prepare(op, userData: ud)
                        if rc == -EBUSY {
                            // Submission queue full: push what is there to the kernel, retry once.
                            submit(&s)
                            rc = prepare(op, userData: ud)
                        }
                        if rc < 0 {
                            failed.append((i, Int(rc)))
                        } else {
                            s.inflight[ud] = Slot(collector: collector, index: i)
                            prepared += 1
                        }
                    }
                    if prepared > 0 {
                        if collector.isCancelled {
                            // Cancelled while preparing: the handler found nothing to cancel yet.
                            for (ud, slot) in s.inflight where slot.collector === collector {
                                _ = ckpt_ring_prep_cancel(ring.pointer, ud, ud | Self.cancelTag)
                            }
                        }
                        submit(&s)
                    }
                    return failed
                }
                for (i, rc) in failed { collector.complete(i, rc) }
            }
        } onCancel: {
            guard collector.markCancelled() else { return }
            state.withLock { s in
                var any = false
                for (ud, slot) in s.inflight where slot.collector === collector {
                    if ckpt_ring_prep_cancel(ring.pointer, ud, ud | Self.cancelTag) == 0 { any = true }
                }
                if any { submit(&s) }
            }
        }
        limiter.release(ops.count)
        var results = raw
        for i in ops.indices where results[i] != -Int(ESHUTDOWN) {
            results[i] = Int(syscalls.completion(ops[i].syscall, Int32(clamping: results[i])))
        }
        return results
    }

    // MARK: Completion

    private func reap() {
        let capacity = 256
        let uds = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        let res = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        defer {
            uds.deallocate()
            res.deallocate()
        }
        var failures = 0
        while true {
            let timeout: Int32 = retryPending.load(ordering: .relaxed) ? 1 : 100
            let n = ckpt_ring_reap(ring.pointer, uds, res, UInt32(capacity), timeout)
            var done: [(Slot, Int32)] = []
            var fatal = false
            if n < 0 && n != -EINTR && n != -EAGAIN && n != -EBUSY {
                failures += 1
                fatal = failures > 100
            } else {
                failures = 0
            }
            let exit: (Bool, CheckedContinuation<Void, Never>?) = state.withLock { s in
                for k in 0..<max(0, Int(n)) {
                    let ud = uds[k]
                    if ud == Self.sentinel || ud & Self.cancelTag != 0 { continue }
                    if let slot = s.inflight.removeValue(forKey: ud) { done.append((slot, res[k])) }
                }
                if s.needsSubmit { submit(&s) }
                if fatal {
                    // The ring is unusable: fan the failure out to every waiter.
                    for (_, slot) in s.inflight { done.append((slot, -ESHUTDOWN)) }
                    s.inflight.removeAll()
                }
                if fatal || (s.shuttingDown && s.inflight.isEmpty) {
                    s.reaperDone = true
                    let c = s.reaperExit
                    s.reaperExit = nil
                    return (true, c)
                }
                return (false, nil)
            }
            for (slot, result) in done { slot.collector.complete(slot.index, Int(result)) }
            if exit.0 {
                exit.1?.resume()
                return
            }
        }
    }

    func shutdown() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let alreadyDone = state.withLock { s -> Bool in
                if s.reaperDone { return true }
                s.shuttingDown = true
                s.reaperExit = c
                for ud in s.inflight.keys {
                    _ = ckpt_ring_prep_cancel(ring.pointer, ud, ud | Self.cancelTag)
                }
                _ = ckpt_ring_prep_nop(ring.pointer, Self.sentinel)
                submit(&s)
                return false
            }
            if alreadyDone { c.resume() }
        }
        let thread = reaper.withLock { t -> JoinableThread? in
            defer { t = nil }
            return t
        }
        thread?.join()
        if !destroyed.exchange(true, ordering: .acquiringAndReleasing) {
            ckpt_ring_destroy(ring.pointer)
        }
    }
}
