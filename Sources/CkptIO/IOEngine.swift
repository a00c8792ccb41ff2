import CCkptURing
import Glibc
import Synchronization
import SystemPackage

/// The I/O engine: batches of positioned reads, writes and flushes over many files, on io_uring
/// or a POSIX thread pool, with O_DIRECT or buffered files and a bounded pool of aligned buffers.
///
/// - Transfers of any size are split into blocks of `bufferSize`; up to `queueDepth` operations
///   are in flight, submitted several per `io_uring_enter` (batches of `queueDepth / 4`).
/// - O_DIRECT and unaligned transfers: the 4096-aligned middle goes direct, from the caller's
///   memory when its address is aligned, otherwise staged through pool buffers (one buffer per
///   block in flight, so memory stays bounded); the unaligned head and tail (and the rest of a
///   short direct transfer that is no longer aligned) go through the file's buffered companion
///   descriptor. Linux keeps the page cache coherent with direct I/O on other ranges (a direct
///   read first writes back cached dirty pages of its range), and one fsync flushes both.
/// - Short transfers are completed by resubmitting the rest; EINTR, EAGAIN and EBUSY are retried
///   at most 64 times per block (with a short sleep for EAGAIN/EBUSY); everything else surfaces
///   as `IOError` naming the operation, path and offset.
/// - Every call returns only once the kernel no longer uses the caller's memory, also when it is
///   cancelled (io_uring: IORING_OP_ASYNC_CANCEL, then the normal completion) or fails.
///
/// Call `shutdown()` when done: it waits for operations in flight and releases the ring,
/// threads and buffers.
public final class IOEngine: Sendable {
    /// The configuration the engine was created with.
    public let configuration: IOEngineConfiguration
    /// The backend in use.
    public let backend: IOBackendKind
    /// Why this backend is in use (configuration, environment, or the fallback reason).
    public let backendReason: String
    /// What was done about NUMA placement of the buffers.
    public var numaReport: String { buffers.numaReport }
    /// Whether the pool's buffers are registered with io_uring (fixed-buffer transfers).
    public let buffersRegistered: Bool
    /// Why buffers are or are not registered.
    public let bufferRegistrationReport: String
    /// The engine's pool of aligned buffers.
    public let buffers: IOBufferPool

    let io: any IOBackend
    let syscalls: Syscalls
    let isShutDown = Atomic<Bool>(false)
    /// Pieces at least this large are submitted alone (see `units`).
    static let largeTransfer = 1 << 20
    /// Bound on retries of EINTR/EAGAIN/EBUSY and zero-byte writes for one piece.
    let maxRetries = 64

    /// Creates an engine. The backend follows `configuration.backend`; with `.automatic` the
    /// environment variable `CKPT_IO_BACKEND=posix|uring|auto` is honoured, and io_uring falls
    /// back to POSIX when the ring cannot be set up (ENOSYS, EPERM, EACCES, EINVAL, ENOMEM).
    public convenience init(configuration: IOEngineConfiguration = .init()) throws {
        let env = getenv("CKPT_IO_BACKEND").map { String(cString: $0) }
        try self.init(configuration: configuration, syscalls: Syscalls(), environment: env)
    }

    /// Creates an engine whose system calls go through a funnel injecting `faultPlan` (tests).
    /// `environment` stands for the value of `CKPT_IO_BACKEND`.
    @_spi(Testing)
    public convenience init(
        configuration: IOEngineConfiguration, faultPlan: IOFaultPlan, environment: String? = nil
    ) throws {
        try self.init(configuration: configuration, syscalls: Syscalls(plan: faultPlan), environment: environment)
    }

    init(configuration: IOEngineConfiguration, syscalls: Syscalls, environment: String?) throws(IOError) {
        var configuration = configuration
        configuration.queueDepth = max(1, configuration.queueDepth)
        self.configuration = configuration
        self.syscalls = syscalls
        let pool = try IOBufferPool(
            bufferSize: configuration.bufferSize, count: configuration.bufferCount,
            numaLocal: configuration.numaLocal)
        buffers = pool

        var choice = configuration.backend
        var source = "configuration"
        if choice == .automatic, let env = environment?.lowercased(), !env.isEmpty {
            source = "CKPT_IO_BACKEND=\(env)"
            switch env {
            case "posix": choice = .posix
            case "uring", "io_uring", "iouring": choice = .ioUring
            case "auto", "automatic": choice = .automatic
            default:
                throw IOError.make(.invalidArgument, "CKPT_IO_BACKEND=\(env): expected posix, uring or auto")
            }
        }
        let backend: any IOBackend
        let reason: String
        switch choice {
        case .posix:
            backend = try PosixBackend(threadCount: configuration.posixThreadCount, syscalls: syscalls)
            reason = "POSIX selected by \(source)"
        case .ioUring:
            do {
                backend = try URingBackend(queueDepth: configuration.queueDepth, syscalls: syscalls)
            } catch {
                throw IOError(
                    code: .backendUnavailable, message: "io_uring requested by \(source) but unavailable: \(error.message)",
                    errno: error.errno, location: error.location)
            }
            reason = "io_uring selected by \(source)"
        case .automatic:
            do {
                backend = try URingBackend(queueDepth: configuration.queueDepth, syscalls: syscalls)
                reason = "io_uring (automatic: ring set up with queue depth \(configuration.queueDepth))"
            } catch {
                let fallback: [Errno] = [.noFunction, .notPermitted, .permissionDenied, .invalidArgument, .noMemory]
                guard let errno = error.errno, fallback.contains(errno) else { throw error }
                backend = try PosixBackend(threadCount: configuration.posixThreadCount, syscalls: syscalls)
                reason = "POSIX (automatic fallback: io_uring_queue_init failed with \(errno), errno \(errno.rawValue))"
            }
        }
        io = backend
        backendReason = reason
        self.backend = backend.kind

        if let ring = backend as? URingBackend {
            if configuration.registerBuffers {
                let rc = ring.registerBuffers(pool.allBuffers)
                buffersRegistered = rc == 0
                bufferRegistrationReport = rc == 0
                    ? "\(pool.bufferCount) buffers of \(pool.bufferSize) bytes registered with io_uring"
                    : "io_uring_register_buffers failed (\(Errno(rawValue: -rc))): plain buffers used"
            } else {
                buffersRegistered = false
                bufferRegistrationReport = "buffer registration disabled by configuration"
            }
        } else {
            buffersRegistered = false
            bufferRegistrationReport = "not applicable to the POSIX backend"
        }
    }

    deinit {
        if !isShutDown.load(ordering: .acquiring) {
            // Best effort for engines dropped without shutdown(): stop threads and the ring.
            let io = self.io
            Task { await io.shutdown() }
        }
    }

    /// Stops the engine: waits for the kernel to finish with operations in flight (cancelling
    /// them where it can), fails pending and later calls with `IOError.Code.shutdown`, joins the
    /// engine's threads and releases the ring. Idempotent.
    public func shutdown() async {
        if isShutDown.exchange(true, ordering: .acquiringAndReleasing) { return }
        buffers.close()
        await io.shutdown()
    }

    // MARK: Files

    /// Opens `path`. With `direct`, transfers use O_DIRECT (with a buffered companion descriptor
    /// for unaligned parts); when the file system refuses O_DIRECT (EINVAL) the file is opened
    /// buffered and `IOFile.directFallback` is set.
    public func open(_ path: String, mode: IOOpenMode, direct: Bool = false) throws -> IOFile {
        try checkRunning()
        var flags: Int32
        var companionFlags: Int32
        switch mode {
        case .read:
            flags = O_RDONLY
            companionFlags = O_RDONLY
        case .write(let create, let truncate, let exclusive), .readWrite(let create, let truncate, let exclusive):
            let access: Int32
            if case .write = mode { access = O_WRONLY } else { access = O_RDWR }
            flags = access
            if create { flags |= O_CREAT }
            if truncate { flags |= O_TRUNC }
            if exclusive { flags |= O_EXCL }
            companionFlags = access
        }
        if !direct {
            let fd = try openRetrying(path, flags)
            return IOFile(path: path, mode: mode, isDirect: false, directFallback: false, fd: fd, bufferedFD: fd)
        }
        let fd: Int32
        do {
            fd = try openRetrying(path, flags | ckpt_o_direct())
        } catch let error as IOError where error.errno == .invalidArgument {
            let fd = try openRetrying(path, flags)
            return IOFile(path: path, mode: mode, isDirect: false, directFallback: true, fd: fd, bufferedFD: fd)
        }
        let companion: Int32
        do {
            companion = try openRetrying(path, companionFlags)
        } catch {
            _ = syscalls.close(fd)
            throw error
        }
        return IOFile(path: path, mode: mode, isDirect: true, directFallback: false, fd: fd, bufferedFD: companion)
    }

    private func openRetrying(_ path: String, _ flags: Int32) throws -> Int32 {
        var retries = 0
        while true {
            let fd = syscalls.open(path, flags, 0o644)
            if fd >= 0 { return fd }
            if (fd == -EINTR || fd == -EAGAIN) && retries < maxRetries {
                retries += 1
                continue
            }
            throw IOError.system("open", errno: Errno(rawValue: -fd), path: path)
        }
    }

    /// Closes the file's descriptors. Throws `IOError.Code.closed` when already closed; the
    /// descriptors are released even when close reports an error.
    public func close(_ file: IOFile) throws {
        if file.closed.exchange(true, ordering: .acquiringAndReleasing) {
            throw IOError.make(.closed, "close of '\(file.path)': already closed", path: file.path)
        }
        var first: IOError?
        if file.bufferedFD != file.fd {
            let rc = syscalls.close(file.bufferedFD)
            if rc < 0 && rc != -EINTR { first = IOError.system("close", errno: Errno(rawValue: -rc), path: file.path) }
        }
        let rc = syscalls.close(file.fd)
        // EINTR from close: Linux has released the descriptor already; not an error.
        if rc < 0 && rc != -EINTR && first == nil { first = IOError.system("close", errno: Errno(rawValue: -rc), path: file.path) }
        if let first { throw first }
    }

    /// The file's size (fstat).
    public func size(of file: IOFile) throws -> Int64 {
        try checkOpen(file)
        var retries = 0
        while true {
            let n = syscalls.fileSize(file.fd)
            if n >= 0 { return n }
            if n == -Int64(EINTR) && retries < maxRetries {
                retries += 1
                continue
            }
            throw IOError.system("fstat", errno: Errno(rawValue: Int32(-n)), path: file.path)
        }
    }

    /// Sets the file's size (ftruncate).
    public func truncate(_ file: IOFile, to length: Int64) throws {
        try checkOpen(file)
        let rc = retryingInterrupts(alsoEAGAIN: false) { syscalls.ftruncate(file.fd, length) }
        if rc < 0 { throw IOError.system("ftruncate(\(length))", errno: Errno(rawValue: -rc), path: file.path) }
    }

    /// Runs `call` (returning 0 or -errno) again while it reports EINTR (and EAGAIN, unless told
    /// otherwise), at most `maxRetries` times; returns its last result.
    private func retryingInterrupts(alsoEAGAIN: Bool = true, _ call: () -> Int32) -> Int32 {
        var rc = call()
        var retries = 0
        while (rc == -EINTR || (alsoEAGAIN && rc == -EAGAIN)) && retries < maxRetries {
            retries += 1
            rc = call()
        }
        return rc
    }

    /// Allocates the file's blocks up to `length` bytes (fallocate(2), mode 0: the file size
    /// grows to `length` if smaller; blocks read back as zeros until written). Returns false when
    /// the file system cannot preallocate (EOPNOTSUPP, ENOSYS): the caller simply writes without.
    /// Other failures (ENOSPC, EIO...) throw.
    ///
    /// Why: on ext4 and XFS an O_DIRECT write past the end of the file takes the inode lock
    /// exclusively and completes synchronously, so appending writes run one at a time however
    /// many are queued; writes into preallocated blocks proceed in parallel.
    ///
    /// On tmpfs and ramfs it does nothing and returns false: there preallocation only zero-fills
    /// pages that the writes then fill again.
    @discardableResult
    public func preallocate(_ file: IOFile, upTo length: Int64) throws -> Bool {
        try checkOpen(file)
        guard length > 0 else { return true }
        if Self.memoryFileSystems.contains(Int(ckpt_fs_type(file.fd))) { return false }
        let rc = retryingInterrupts { syscalls.fallocate(file.fd, 0, length) }
        if rc == 0 { return true }
        if rc == -EOPNOTSUPP || rc == -ENOSYS { return false }
        throw IOError.system("fallocate(0, \(length))", errno: Errno(rawValue: -rc), path: file.path)
    }

    /// `statfs.f_type` of tmpfs (TMPFS_MAGIC) and ramfs (RAMFS_MAGIC).
    static let memoryFileSystems: Set<Int> = [0x0102_1994, 0x8584_58F6]

    /// Drops the file's cached pages (posix_fadvise DONTNEED over the whole file), so that the
    /// next buffered read comes from the device.
    public func dropCache(_ file: IOFile) throws {
        try checkOpen(file)
        let rc = syscalls.fadvise(file.bufferedFD, 0, 0, POSIX_FADV_DONTNEED)
        if rc != 0 { throw IOError.system("posix_fadvise(DONTNEED)", errno: Errno(rawValue: -rc), path: file.path) }
    }

    /// Renames `from` to `to` (rename(2): atomic, replaces `to`). Call ``syncDirectory(_:)`` on the
    /// parent afterwards to make it durable.
    public func rename(_ from: String, to: String) throws {
        try checkRunning()
        let rc = retryingInterrupts { syscalls.rename(from, to, exchange: false) }
        if rc < 0 { throw IOError.system("rename to '\(to)'", errno: Errno(rawValue: -rc), path: from) }
    }

    /// Atomically swaps two existing paths (renameat2 with RENAME_EXCHANGE). Throws with
    /// `errno == .invalidArgument` where the file system cannot exchange.
    public func exchange(_ a: String, _ b: String) throws {
        try checkRunning()
        let rc = retryingInterrupts { syscalls.rename(a, b, exchange: true) }
        if rc < 0 { throw IOError.system("exchange with '\(b)'", errno: Errno(rawValue: -rc), path: a) }
    }

    /// Flushes a directory's entries (after creating or renaming files in it).
    public func syncDirectory(_ path: String) throws {
        try checkRunning()
        let fd = try openRetrying(path, O_RDONLY | O_DIRECTORY)
        var rc: Int32 = 0
        var retries = 0
        repeat {
            rc = syscalls.fsync(fd, dataOnly: false)
            retries += 1
        } while rc == -EINTR && retries < maxRetries
        let closeRC = syscalls.close(fd)
        if rc < 0 { throw IOError.system("fsync of directory", errno: Errno(rawValue: -rc), path: path) }
        if closeRC < 0 && closeRC != -EINTR { throw IOError.system("close of directory", errno: Errno(rawValue: -closeRC), path: path) }
    }

    // MARK: Transfers

    /// Writes all of `bytes` at `offset`, in blocks of the buffer size with up to the queue
    /// depth in flight. Unaligned parts of direct files go through the buffered companion
    /// descriptor; an unaligned source is staged through pool buffers. Short writes, EINTR and
    /// EAGAIN are retried; other failures throw `IOError`. Returns only once the kernel no longer
    /// uses `bytes`.
    nonisolated(nonsending)
    public func write(_ file: IOFile, at offset: Int64, from bytes: UnsafeRawBufferPointer) async throws {
        try await perform([.write(file, offset: offset, from: bytes)])
    }

    /// Reads exactly `bytes.count` bytes at `offset`; throws `IOError.Code.unexpectedEndOfFile`
    /// (naming file, offset, expected and got bytes) when the file ends first.
    nonisolated(nonsending)
    public func read(_ file: IOFile, at offset: Int64, into bytes: UnsafeMutableRawBufferPointer) async throws {
        try await perform([.read(file, offset: offset, into: bytes)])
    }

    /// Flushes the file's data and metadata to the device (fsync; one call covers both of a
    /// direct file's descriptors, which share the inode).
    public func fsync(_ file: IOFile) async throws {
        try await perform([.fsync(file)])
    }

    /// Runs a batch of reads, writes and flushes over any files: transfers are submitted
    /// together (several operations per submission, at most the queue depth in flight), then
    /// the flushes run. Returns when everything has settled; throws the first error.
    nonisolated(nonsending)
    public func perform(_ requests: [IORequest]) async throws {
        try checkRunning()
        var pieces: [Piece] = []
        var flushes: [IOFile] = []
        for request in requests {
            switch request {
            case .read(let file, let offset, let buffer):
                try checkOpen(file)
                guard let base = buffer.baseAddress, buffer.count > 0 else { continue }
                split(.read, file, offset, base, buffer.count, into: &pieces)
            case .write(let file, let offset, let bytes):
                try checkOpen(file)
                guard let base = bytes.baseAddress, bytes.count > 0 else { continue }
                split(.write, file, offset, UnsafeMutableRawPointer(mutating: base), bytes.count, into: &pieces)
            case .readv(let file, let offset, let buffers):
                try checkOpen(file)
                vectored(.read, file, offset, buffers.map { ($0.baseAddress, $0.count) }, into: &pieces)
            case .writev(let file, let offset, let buffers):
                try checkOpen(file)
                vectored(.write, file, offset, buffers.map { ($0.baseAddress.map(UnsafeMutableRawPointer.init(mutating:)), $0.count) }, into: &pieces)
            case .fsync(let file):
                try checkOpen(file)
                if !flushes.contains(where: { $0 === file }) { flushes.append(file) }
            }
        }
        try await execute(units(pieces))
        if !flushes.isEmpty { try await flush(flushes) }
    }

    private func checkRunning() throws(IOError) {
        if isShutDown.load(ordering: .acquiring) { throw IOError.make(.shutdown, "the I/O engine was shut down") }
    }

    private func checkOpen(_ file: IOFile) throws(IOError) {
        try checkRunning()
        if file.isClosed { throw IOError.make(.closed, "'\(file.path)' is closed", path: file.path) }
    }

    /// Largest number of segments of one vectored transfer (Linux's IOV_MAX).
    static let maxSegments = 1024

    /// One piece for a vectored request when the file allows it (see `IORequest.readv`),
    /// otherwise the pieces of one request per buffer.
    private func vectored(
        _ kind: RawOp.Kind, _ file: IOFile, _ offset: Int64, _ buffers: [(UnsafeMutableRawPointer?, Int)],
        into pieces: inout [Piece]
    ) {
        let segments = buffers.compactMap { address, length in
            address.flatMap { length > 0 ? Piece.Segment(address: $0, length: length) : nil }
        }
        let total = segments.reduce(0) { $0 + $1.length }
        let fits = !file.isDirect || (Alignment.isAligned(offset) && segments.allSatisfy {
            Alignment.isAligned(UnsafeRawPointer($0.address)) && Alignment.isAligned($0.length)
        })
        if segments.count > 1, segments.count <= Self.maxSegments, fits {
            pieces.append(Piece(
                kind: kind, file: file, route: file.isDirect ? .direct : .plain, offset: offset,
                address: segments[0].address, length: total, requestOffset: offset, requestLength: total,
                segments: segments))
            return
        }
        var at = offset
        for segment in segments {
            split(kind, file, at, segment.address, segment.length, request: (offset, total), into: &pieces)
            at += Int64(segment.length)
        }
    }

    /// Splits one request into pieces of at most the buffer size, by alignment.
    private func split(
        _ kind: RawOp.Kind, _ file: IOFile, _ offset: Int64, _ address: UnsafeMutableRawPointer, _ length: Int,
        request: (offset: Int64, length: Int)? = nil, into pieces: inout [Piece]
    ) {
        let block = buffers.bufferSize
        let request = request ?? (offset, length)
        func add(_ route: Piece.Route, _ start: Int64, _ end: Int64) {
            var at = start
            while at < end {
                let n = Int(min(Int64(block), end - at))
                pieces.append(Piece(
                    kind: kind, file: file, route: route, offset: at, address: address + Int(at - offset), length: n,
                    requestOffset: request.offset, requestLength: request.length))
                at += Int64(n)
            }
        }
        let end = offset + Int64(length)
        guard file.isDirect else {
            add(.plain, offset, end)
            return
        }
        let a = Alignment.roundUp(offset)
        let b = Alignment.roundDown(end)
        if a >= b {
            add(.plain, offset, end)
            return
        }
        if a > offset { add(.plain, offset, a) }
        let middle = Alignment.isAligned(UnsafeRawPointer(address + Int(a - offset)))
        add(middle ? .direct : .staged, a, b)
        if b < end { add(.plain, b, end) }
    }

    /// Groups pieces: small plain/direct ones in batches submitted together (one
    /// `io_uring_enter` for several operations), staged and large ones alone. A batch frees its
    /// queue slots only when its last operation completes, so large transfers, where one
    /// submission per operation costs nothing, go alone to keep the queue full.
    private func units(_ pieces: [Piece]) -> [TransferUnit] {
        let batch = max(1, configuration.queueDepth / 4)
        var units: [TransferUnit] = []
        var current: [Piece] = []
        for piece in pieces {
            if piece.route == .staged || piece.length >= Self.largeTransfer || piece.segments != nil {
                units.append(TransferUnit(pieces: [piece], staged: piece.route == .staged))
                continue
            }
            current.append(piece)
            if current.count == batch {
                units.append(TransferUnit(pieces: current, staged: false))
                current = []
            }
        }
        if !current.isEmpty { units.append(TransferUnit(pieces: current, staged: false)) }
        return units
    }

    /// Runs units with at most the queue depth of operations in flight; waits for all started
    /// units and throws the most relevant error.
    private func execute(_ units: [TransferUnit]) async throws {
        if units.isEmpty { return }
        if units.count == 1 {
            try await run(units[0])
            return
        }
        // Twice the queue depth of operations may be started: the backend admits at most
        // queueDepth, so the next one is already waiting when one completes.
        let window = configuration.queueDepth * 2
        var failure: (any Error)?
        await withTaskGroup(of: (Int, (any Error)?).self) { group in
            var next = 0
            var inFlight = 0
            while true {
                while next < units.count, failure == nil, !Task.isCancelled,
                    inFlight == 0 || inFlight + units[next].weight <= window
                {
                    let unit = units[next]
                    next += 1
                    inFlight += unit.weight
                    group.addTask {
                        do {
                            try await self.run(unit)
                            return (unit.weight, nil)
                        } catch {
                            return (unit.weight, error)
                        }
                    }
                }
                guard let (weight, error) = await group.next() else { break }
                inFlight -= weight
                if let error { failure = Self.preferred(failure, error) }
            }
        }
        if let failure { throw failure }
        try Task.checkCancellation()
    }

    /// Of two errors, the one to report: I/O errors over cancellation, earliest end of file.
    static func preferred(_ current: (any Error)?, _ new: any Error) -> any Error {
        guard let current else { return new }
        if current is CancellationError { return new }
        if let a = current as? IOError, let b = new as? IOError,
            a.code == .unexpectedEndOfFile, b.code == .unexpectedEndOfFile,
            (b.transferredBytes ?? 0) < (a.transferredBytes ?? 0)
        {
            return b
        }
        return current
    }

    private func run(_ unit: TransferUnit) async throws {
        if unit.staged {
            for piece in unit.pieces { try await runStaged(piece) }
            return
        }
        let ops = unit.pieces.map { piece in
            // Caller memory that lies in a registered pool buffer uses fixed-buffer transfers.
            var fixed: Int32 = -1
            if piece.route == .direct, buffersRegistered,
                let index = buffers.bufferIndex(containing: piece.address, length: piece.length)
            {
                fixed = Int32(index)
            }
            return RawOp(
                kind: piece.kind, fd: piece.route == .direct ? piece.file.fd : piece.file.bufferedFD,
                address: piece.address, length: piece.length, offset: piece.offset, fixedIndex: fixed,
                vector: piece.segments.map(IOVector.init))
        }
        let results = await io.run(ops)
        var failure: (any Error)?
        for (i, piece) in unit.pieces.enumerated() where results[i] != piece.length {
            do {
                if let segments = piece.segments {
                    try await completeVectored(piece, segments: segments, result: results[i])
                    continue
                }
                try await transfer(
                    piece, address: piece.address, direct: piece.route == .direct, fixedIndex: -1,
                    initialResult: results[i])
            } catch {
                failure = Self.preferred(failure, error)
            }
        }
        if let failure { throw failure }
    }

    /// Completes a vectored piece that moved fewer bytes than asked (or failed): the rest goes
    /// segment by segment through `transfer`, which retries, resumes short transfers and reports
    /// errors (the first remaining segment sees the vectored result when it is an error).
    private func completeVectored(_ piece: Piece, segments: [Piece.Segment], result: Int) async throws {
        var moved = max(0, result)
        var pending: Int? = result < 0 ? result : nil
        var at = piece.offset
        for segment in segments {
            defer { at += Int64(segment.length) }
            if moved >= segment.length {
                moved -= segment.length
                continue
            }
            let skip = moved
            moved = 0
            let rest = Piece(
                kind: piece.kind, file: piece.file, route: piece.route, offset: at + Int64(skip),
                address: segment.address + skip, length: segment.length - skip, requestOffset: piece.requestOffset,
                requestLength: piece.requestLength)
            try await transfer(rest, address: rest.address, direct: piece.route == .direct, fixedIndex: -1, initialResult: pending)
            pending = nil
        }
    }

    private func runStaged(_ piece: Piece) async throws {
        let buffer = try await buffers.acquire()
        defer { buffers.release(buffer) }
        guard let staging = buffer.bytes.baseAddress else { return }
        if piece.kind == .write { memcpy(staging, piece.address, piece.length) }
        try await transfer(
            piece, address: staging, direct: true, fixedIndex: buffersRegistered ? Int32(buffer.index) : -1,
            initialResult: nil)
        if piece.kind == .read { memcpy(piece.address, staging, piece.length) }
    }

    /// Completes one piece: resubmits the rest after short transfers (switching to the buffered
    /// descriptor when the rest is no longer aligned), retries transient errors a bounded number
    /// of times, maps the rest to `IOError`.
    private func transfer(
        _ piece: Piece, address: UnsafeMutableRawPointer, direct: Bool, fixedIndex: Int32, initialResult: Int?
    ) async throws {
        var done = 0
        var retries = 0
        var pending = initialResult
        let file = piece.file
        while done < piece.length {
            let result: Int
            if let p = pending {
                result = p
                pending = nil
            } else {
                if Task.isCancelled { throw CancellationError() }
                let at = piece.offset + Int64(done)
                let rest = piece.length - done
                let useDirect = direct && Alignment.isAligned(UnsafeRawPointer(address + done))
                    && Alignment.isAligned(at) && Alignment.isAligned(rest)
                let op = RawOp(
                    kind: piece.kind, fd: useDirect ? file.fd : file.bufferedFD, address: address + done,
                    length: rest, offset: at, fixedIndex: useDirect ? fixedIndex : -1)
                result = await io.run([op])[0]
            }
            if result > 0 {
                done += result
                retries = 0
                continue
            }
            let at = piece.offset + Int64(done)
            if result == 0 && piece.kind == .read {
                let got = Int(at - piece.requestOffset)
                throw IOError(
                    code: .unexpectedEndOfFile,
                    message: "read of \(piece.requestLength) bytes at offset \(piece.requestOffset) in '\(file.path)' "
                        + "reached end of file after \(got) bytes (at offset \(at))",
                    path: file.path, offset: piece.requestOffset, expectedBytes: piece.requestLength,
                    transferredBytes: got, location: .init(function: #function, file: #fileID, line: #line))
            }
            let errno = result == 0 ? EAGAIN : Int32(-result)
            switch errno {
            case EINTR, EAGAIN, EBUSY:
                retries += 1
                if retries > maxRetries {
                    throw IOError(
                        code: .retriesExhausted,
                        message: "\(piece.kind == .read ? "read" : "write") of \(piece.length - done) bytes at offset \(at) "
                            + "in '\(file.path)' still failing after \(maxRetries) retries",
                        path: file.path, offset: at, errno: Errno(rawValue: errno),
                        location: .init(function: #function, file: #fileID, line: #line))
                }
                if errno != EINTR { try await Task.sleep(nanoseconds: UInt64(min(retries, 10)) * 100_000) }
            case ECANCELED:
                if Task.isCancelled { throw CancellationError() }
                throw IOError.system("I/O (cancelled by engine shutdown)", errno: .canceled, path: file.path, offset: at)
                    .with(code: .shutdown)
            case ESHUTDOWN:
                throw IOError.make(.shutdown, "the I/O engine was shut down during I/O on '\(file.path)'", path: file.path, offset: at)
            default:
                throw IOError.system(piece.kind == .read ? "pread" : "pwrite", errno: Errno(rawValue: errno), path: file.path, offset: at)
            }
        }
    }

    private func flush(_ files: [IOFile]) async throws {
        let ops = files.map { RawOp(kind: .fsync, fd: $0.fd, address: nil, length: 0, offset: 0) }
        var results = await io.run(ops)
        var failure: (any Error)?
        for (i, file) in files.enumerated() {
            var retries = 0
            while results[i] == -Int(EINTR) || results[i] == -Int(EAGAIN), retries < maxRetries {
                retries += 1
                if Task.isCancelled { break }
                results[i] = await io.run([ops[i]])[0]
            }
            let r = results[i]
            if r >= 0 { continue }
            let error: any Error
            switch Int32(-r) {
            case ECANCELED where Task.isCancelled: error = CancellationError()
            case ESHUTDOWN, ECANCELED: error = IOError.make(.shutdown, "the I/O engine was shut down during fsync of '\(file.path)'", path: file.path)
            default: error = IOError.system("fsync", errno: Errno(rawValue: Int32(-r)), path: file.path)
            }
            failure = Self.preferred(failure, error)
        }
        if let failure { throw failure }
    }

    // MARK: Testing

    /// Operations counted by the syscall funnel so far.
    @_spi(Testing)
    public var funnelOperationCount: Int { syscalls.operationCount }

    /// Fault rules that fired so far, with the kind of operation each hit.
    @_spi(Testing)
    public var firedFaults: [(rule: IOFaultPlan.Rule, kind: IOSyscall)] { syscalls.firedRules }

    /// Submission system calls made by the backend so far.
    @_spi(Testing)
    public var submitCalls: Int { io.submitCalls }
}

extension IOError {
    func with(code: Code) -> IOError {
        var copy = self
        copy.code = code
        return copy
    }
}
