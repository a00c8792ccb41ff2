import CCkptURing
import Glibc
import Synchronization
import SystemPackage

/// The one funnel every system call and io_uring completion result of the engine goes through.
///
/// Tests give it an `IOFaultPlan`; production engines use a funnel with an empty plan, whose cost
/// is one uncontended lock per operation.
final class Syscalls: Sendable {
    struct State {
        var plan: IOFaultPlan
        var total = 0
        var perKind: [IOSyscall: Int] = [:]
        var fired: [(rule: IOFaultPlan.Rule, kind: IOSyscall)] = []
    }

    let state: Mutex<State>

    init(plan: IOFaultPlan = .init()) {
        state = Mutex(State(plan: plan))
    }

    /// Counts one operation and returns the fault to apply, if any.
    func next(_ kind: IOSyscall) -> IOFaultPlan.Fault? {
        state.withLock { s in
            let total = s.total
            let nth = s.perKind[kind, default: 0]
            s.total += 1
            s.perKind[kind] = nth + 1
            if s.plan.rules.isEmpty { return nil }
            for rule in s.plan.rules {
                let hit = rule.kind == nil ? rule.index == total : (rule.kind == kind && rule.index == nth)
                if hit {
                    s.fired.append((rule, kind))
                    return rule.fault
                }
            }
            return nil
        }
    }

    var operationCount: Int { state.withLock { $0.total } }
    /// Operations of one kind so far.
    func operationCount(_ kind: IOSyscall) -> Int { state.withLock { $0.perKind[kind, default: 0] } }
    var firedRules: [(rule: IOFaultPlan.Rule, kind: IOSyscall)] { state.withLock { $0.fired } }

    // MARK: System calls. Each returns the result or -errno, never sets errno for the caller.

    func open(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
        if case .error(let e)? = next(.open) { return -e.rawValue }
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        return fd < 0 ? -Glibc.errno : fd
    }

    func rename(_ from: String, _ to: String, exchange: Bool) -> Int32 {
        if case .error(let e)? = next(.rename) { return -e.rawValue }
        return ckpt_rename(from, to, exchange ? 1 : 0)
    }

    func close(_ fd: Int32) -> Int32 {
        let fault = next(.close)
        let rc = Glibc.close(fd)
        if case .error(let e)? = fault { return -e.rawValue }
        return rc < 0 ? -Glibc.errno : 0
    }

    func pread(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ offset: Int64) -> Int {
        transfer(.read) { Glibc.pread(fd, buffer, count, off_t(offset)) }
    }

    func pwrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int, _ offset: Int64) -> Int {
        transfer(.write) { Glibc.pwrite(fd, buffer, count, off_t(offset)) }
    }

    /// preadv/pwritev (`write`) of `vector`, counted as one `.read` or `.write`.
    func transferv(_ fd: Int32, _ vector: IOVector, _ offset: Int64, write: Bool) -> Int {
        transfer(write ? .write : .read) {
            write
                ? Glibc.pwritev(fd, vector.iovecs, Int32(vector.count), off_t(offset))
                : Glibc.preadv(fd, vector.iovecs, Int32(vector.count), off_t(offset))
        }
    }

    /// One read or write through the fault plan. A short transfer is simulated as the kernel
    /// reporting fewer bytes than it moved (as for io_uring completions): the O_DIRECT alignment
    /// rules still hold for the call.
    private func transfer(_ kind: IOSyscall, _ call: () -> Int) -> Int {
        var limit = Int.max
        switch next(kind) {
        case .error(let e)?: return -Int(e.rawValue)
        case .shortTransfer(let n)?: limit = n
        case nil: break
        }
        let n = call()
        return n < 0 ? -Int(Glibc.errno) : min(n, limit)
    }

    func fsync(_ fd: Int32, dataOnly: Bool) -> Int32 {
        if case .error(let e)? = next(dataOnly ? .fdatasync : .fsync) { return -e.rawValue }
        let rc = dataOnly ? Glibc.fdatasync(fd) : Glibc.fsync(fd)
        return rc < 0 ? -Glibc.errno : 0
    }

    func ftruncate(_ fd: Int32, _ length: Int64) -> Int32 {
        if case .error(let e)? = next(.ftruncate) { return -e.rawValue }
        let rc = Glibc.ftruncate(fd, off_t(length))
        return rc < 0 ? -Glibc.errno : 0
    }

    /// fallocate(fd, 0, offset, length): allocates blocks and extends the size; -errno on failure.
    func fallocate(_ fd: Int32, _ offset: Int64, _ length: Int64) -> Int32 {
        if case .error(let e)? = next(.fallocate) { return -e.rawValue }
        return ckpt_fallocate(fd, offset, length)
    }

    /// fstat: the file size, or -errno.
    func fileSize(_ fd: Int32) -> Int64 {
        if case .error(let e)? = next(.fstat) { return -Int64(e.rawValue) }
        var st = stat()
        let rc = Glibc.fstat(fd, &st)
        return rc < 0 ? -Int64(Glibc.errno) : Int64(st.st_size)
    }

    func fadvise(_ fd: Int32, _ offset: Int64, _ length: Int64, _ advice: Int32) -> Int32 {
        if case .error(let e)? = next(.fadvise) { return -e.rawValue }
        // posix_fadvise returns the error number instead of setting errno.
        return -posix_fadvise(fd, off_t(offset), off_t(length), advice)
    }

    func ringCreate(entries: UInt32) -> (OpaquePointer?, Int32) {
        if case .error(let e)? = next(.ringSetup) { return (nil, -e.rawValue) }
        var ring: OpaquePointer?
        let rc = ckpt_ring_create(entries, &ring)
        return (ring, rc)
    }

    /// Passes an io_uring completion result through the fault plan.
    func completion(_ kind: IOSyscall, _ result: Int32) -> Int32 {
        switch next(kind) {
        case .error(let e)?: return -e.rawValue
        case .shortTransfer(let n)?: return result >= 0 ? Int32(min(Int(result), n)) : result
        case nil: return result
        }
    }
}
