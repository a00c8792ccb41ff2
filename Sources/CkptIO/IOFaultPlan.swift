import SystemPackage

/// The system calls (and io_uring completions) that go through the engine's syscall funnel.
public enum IOSyscall: String, Sendable, Hashable, CaseIterable {
    case open, close, read, write, fsync, fdatasync, ftruncate, fstat, fadvise
    /// fallocate(2), mode 0 (preallocation that extends the file).
    case fallocate
    /// rename(2) and renameat2(RENAME_EXCHANGE).
    case rename
    /// io_uring_queue_init.
    case ringSetup
}

/// A plan of faults injected by the syscall funnel (tests only).
///
/// Operations are counted from 0, in total and per kind. Reads and writes are counted the same
/// way for both backends: a POSIX pread and an io_uring read completion are both one `.read`.
@_spi(Testing)
public struct IOFaultPlan: Sendable {
    /// What to do instead of (or to) an operation.
    public enum Fault: Sendable, Hashable {
        /// Fail with this errno (a close still closes the descriptor, as Linux does).
        case error(Errno)
        /// Transfer at most this many bytes (reads and writes only).
        case shortTransfer(Int)
    }

    /// One injected fault.
    public struct Rule: Sendable, Hashable {
        /// The operation index (total when `kind` is nil, else among operations of `kind`).
        public var index: Int
        /// The kind of operation counted, or nil for every operation.
        public var kind: IOSyscall?
        /// The fault.
        public var fault: Fault

        public init(index: Int, kind: IOSyscall? = nil, fault: Fault) {
            self.index = index
            self.kind = kind
            self.fault = fault
        }
    }

    /// The rules, all active at once.
    public var rules: [Rule]

    public init(_ rules: [Rule] = []) { self.rules = rules }
}
