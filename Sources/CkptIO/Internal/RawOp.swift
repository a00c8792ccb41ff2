import Glibc
import Synchronization

/// One positioned transfer or flush handed to a backend.
///
/// `@unchecked Sendable`: it carries a raw address. The engine guarantees the memory outlives the
/// operation: callers await the backend until the operation's completion has been reaped.
struct RawOp: @unchecked Sendable {
    enum Kind: Sendable { case read, write, fsync, fdatasync }
    var kind: Kind
    var fd: Int32
    var address: UnsafeMutableRawPointer?
    var length: Int
    var offset: Int64
    /// Index of the registered io_uring buffer containing `address`, or -1.
    var fixedIndex: Int32 = -1
    /// For a vectored read or write (readv/writev): the segments, in file order; `address` is
    /// then nil and `length` their total.
    var vector: IOVector? = nil

    var syscall: IOSyscall {
        switch kind {
        case .read: .read
        case .write: .write
        case .fsync: .fsync
        case .fdatasync: .fdatasync
        }
    }
}

/// The iovec array of one vectored operation, owned by the operation: it stays allocated for as
/// long as the `RawOp` (and so the kernel's use of it) lives.
///
/// `@unchecked Sendable`: the array is written once, in `init`, and only read afterwards; the
/// memory it points to is the caller's, kept valid by the engine as for any operation.
final class IOVector: @unchecked Sendable {
    let iovecs: UnsafeMutablePointer<iovec>
    let count: Int
    let totalLength: Int

    init(_ segments: [Piece.Segment]) {
        count = segments.count
        iovecs = .allocate(capacity: max(1, segments.count))
        var total = 0
        for (i, segment) in segments.enumerated() {
            iovecs[i] = iovec(iov_base: segment.address, iov_len: segment.length)
            total += segment.length
        }
        totalLength = total
    }

    deinit { iovecs.deallocate() }
}

/// Collects the results of one batch and resumes its waiter once, when the last one arrives.
final class BatchCollector: Sendable {
    struct State {
        var results: [Int]
        var remaining: Int
        var continuation: CheckedContinuation<[Int], Never>?
        var cancelled = false
        var finished = false
    }

    let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(results: Array(repeating: 0, count: count), remaining: count))
    }

    /// Installs the continuation; returns false (and does not install it) when the batch was
    /// cancelled before submission.
    func install(_ continuation: CheckedContinuation<[Int], Never>) -> Bool {
        state.withLock { s in
            if s.cancelled { return false }
            s.continuation = continuation
            return true
        }
    }

    /// Marks the batch cancelled; returns whether a continuation was installed (ops submitted).
    func markCancelled() -> Bool {
        state.withLock { s in
            s.cancelled = true
            return s.continuation != nil
        }
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Records one result; resumes the waiter (outside the lock) after the last one.
    func complete(_ index: Int, _ result: Int) {
        let ready: (CheckedContinuation<[Int], Never>, [Int])? = state.withLock { s in
            s.results[index] = result
            s.remaining -= 1
            guard s.remaining == 0, !s.finished, let c = s.continuation else { return nil }
            s.finished = true
            s.continuation = nil
            return (c, s.results)
        }
        if let (c, results) = ready { c.resume(returning: results) }
    }
}

/// A FIFO counting semaphore for async callers (bounds io_uring operations in flight).
final class AsyncLimiter: Sendable {
    struct State {
        var available: Int
        var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    let capacity: Int
    let state: Mutex<State>

    init(capacity: Int) {
        self.capacity = capacity
        state = Mutex(State(available: capacity))
    }

    func acquire(_ count: Int) async {
        let n = min(count, capacity)
        let granted = state.withLock { s -> Bool in
            if s.waiters.isEmpty && s.available >= n {
                s.available -= n
                return true
            }
            return false
        }
        if granted { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.waiters.isEmpty && s.available >= n {
                    s.available -= n
                    return true
                }
                s.waiters.append((n, c))
                return false
            }
            if now { c.resume() }
        }
    }

    func release(_ count: Int) {
        let n = min(count, capacity)
        let wake: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.available += n
            var out: [CheckedContinuation<Void, Never>] = []
            while let first = s.waiters.first, s.available >= first.count {
                s.available -= first.count
                out.append(first.continuation)
                s.waiters.removeFirst()
            }
            return out
        }
        for c in wake { c.resume() }
    }
}
