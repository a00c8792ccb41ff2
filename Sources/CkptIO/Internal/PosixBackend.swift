import Glibc
import Synchronization

/// pread/pwrite/fsync on a fixed set of worker threads fed by one condition-guarded queue.
final class PosixBackend: IOBackend {
    struct Job: Sendable {
        var op: RawOp
        var collector: BatchCollector
        var index: Int
    }

    let kind = IOBackendKind.posix
    let syscalls: Syscalls
    let queue = ConditionQueue<Job>()
    let threads = Mutex<[JoinableThread]>([])
    let submits = Atomic<Int>(0)

    init(threadCount: Int, syscalls: Syscalls) throws(IOError) {
        self.syscalls = syscalls
        var started: [JoinableThread] = []
        for _ in 0..<max(1, threadCount) {
            guard let thread = JoinableThread({ [queue, syscalls] in Self.work(queue, syscalls) }) else {
                _ = queue.close()
                for t in started { t.join() }
                throw IOError.make(.other, "could not start POSIX I/O worker threads")
            }
            started.append(thread)
        }
        threads.withLock { $0 = started }
    }

    var submitCalls: Int { submits.load(ordering: .relaxed) }

    private static func work(_ queue: ConditionQueue<Job>, _ syscalls: Syscalls) {
        while let job = queue.pop() {
            let result = job.collector.isCancelled ? -Int(ECANCELED) : execute(job.op, syscalls)
            job.collector.complete(job.index, result)
        }
    }

    private static func execute(_ op: RawOp, _ syscalls: Syscalls) -> Int {
        if let vector = op.vector, op.kind == .read || op.kind == .write {
            return syscalls.transferv(op.fd, vector, op.offset, write: op.kind == .write)
        }
        switch op.kind {
        case .read:
            guard let address = op.address else { return -Int(EFAULT) }
            return syscalls.pread(op.fd, address, op.length, op.offset)
        case .write:
            guard let address = op.address else { return -Int(EFAULT) }
            return syscalls.pwrite(op.fd, address, op.length, op.offset)
        case .fsync:
            return Int(syscalls.fsync(op.fd, dataOnly: false))
        case .fdatasync:
            return Int(syscalls.fsync(op.fd, dataOnly: true))
        }
    }

    func run(_ ops: [RawOp]) async -> [Int] {
        if ops.isEmpty { return [] }
        let collector = BatchCollector(count: ops.count)
        let queue = self.queue
        submits.add(1, ordering: .relaxed)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<[Int], Never>) in
                guard collector.install(c) else {
                    c.resume(returning: Array(repeating: -Int(ECANCELED), count: ops.count))
                    return
                }
                let jobs = ops.enumerated().map { Job(op: $0.element, collector: collector, index: $0.offset) }
                if !queue.push(jobs) {
                    for i in ops.indices { collector.complete(i, -Int(ESHUTDOWN)) }
                }
            }
        } onCancel: {
            _ = collector.markCancelled()
        }
    }

    func shutdown() async {
        for job in queue.close() { job.collector.complete(job.index, -Int(ESHUTDOWN)) }
        let all = threads.withLock { t -> [JoinableThread] in
            defer { t = [] }
            return t
        }
        for t in all { t.join() }
    }
}
