import Glibc

/// A pthread that can be joined.
///
/// `@unchecked Sendable`: `thread` is written once in `init` before the object is shared and
/// only read by `join`, which callers invoke once.
final class JoinableThread: @unchecked Sendable {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    private var thread = pthread_t()

    /// Starts a thread running `body`; returns nil when pthread_create fails.
    init?(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { arg in
            guard let arg else { return nil }
            let body = Unmanaged<Body>.fromOpaque(arg).takeRetainedValue()
            body.run()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Body>.fromOpaque(box).release()
            return nil
        }
    }

    func join() {
        pthread_join(thread, nil)
    }
}

/// A FIFO job queue guarded by a pthread mutex with a condition variable, for worker threads.
///
/// `@unchecked Sendable`: `jobs` and `closed` are only touched with `mutex` held; the mutex and
/// condition are heap-allocated so they never move.
final class ConditionQueue<Job: Sendable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var jobs: [Job] = []
    private var head = 0
    private var closed = false

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Appends jobs; returns false (appending nothing) when the queue is closed.
    func push(_ newJobs: [Job]) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if closed { return false }
        jobs.append(contentsOf: newJobs)
        if newJobs.count == 1 { pthread_cond_signal(condition) } else { pthread_cond_broadcast(condition) }
        return true
    }

    /// Waits for a job; nil once the queue is closed and drained.
    func pop() -> Job? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while head == jobs.count && !closed {
            pthread_cond_wait(condition, mutex)
        }
        if head == jobs.count { return nil }
        let job = jobs[head]
        head += 1
        if head > 1024 && head * 2 > jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }

    /// Closes the queue and returns the jobs never taken.
    func close() -> [Job] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        closed = true
        let left = Array(jobs[head...])
        jobs.removeAll()
        head = 0
        pthread_cond_broadcast(condition)
        return left
    }
}
