#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Samples the process's resident set size on a background thread and reports the peaks.
///
/// ```swift
/// let sampler = MemorySampler(gauge: { pool.bytesHeld })
/// try sampler.start()
/// ... work ...
/// let report = sampler.stop()   // joins the thread
/// ```
///
/// RSS comes from `/proc/self/statm` (resident pages times the page size). The baseline is taken
/// in `start()`; `peakExtraRSS` is the peak over it. The optional gauge (e.g. bytes held by an I/O
/// engine's buffer pool) is sampled at the same rate and its peak reported. A sampler can be
/// started again after `stop()`. `stop()` on a sampler that is not running returns an empty report.
public final class MemorySampler: Sendable {
    /// Time between samples.
    public let interval: Duration
    private let gauge: (@Sendable () -> Int)?
    private let shared: SamplerShared
    private let session: Mutex<Session?>

    private struct Session: Sendable {
        var thread: ThreadHandle
        var baseline: Int
        var startedAt: ContinuousClock.Instant
    }

    /// Creates a sampler; nothing runs until ``start()``.
    ///
    /// - Parameters:
    ///   - interval: time between samples (default 1 ms; clamped to at least 100 µs).
    ///   - gauge: an external value to sample alongside RSS, e.g. buffer-pool bytes held.
    public init(interval: Duration = .milliseconds(1), gauge: (@Sendable () -> Int)? = nil) {
        self.interval = max(interval, .microseconds(100))
        self.gauge = gauge
        self.shared = SamplerShared()
        self.session = Mutex(nil)
    }

    deinit {
        _ = stop()
    }

    /// The current resident set size in bytes, or nil when `/proc/self/statm` is unreadable.
    public static func currentRSS() -> Int? {
        let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readStatmRSS(fd: fd)
    }

    /// `getrusage(RUSAGE_SELF).ru_maxrss` in bytes: the highest RSS the process ever had.
    public static func lifetimeMaxRSS() -> Int {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        return Int(usage.ru_maxrss) * 1024
    }

    /// Takes the baseline and starts the sampling thread.
    public func start() throws(MemorySamplerError) {
        try session.withLock { (current: inout Session?) throws(MemorySamplerError) -> Void in
            guard current == nil else { throw .alreadyRunning }
            let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .statmUnavailable(errno: errno) }
            guard let baseline = readStatmRSS(fd: fd) else {
                close(fd)
                throw .statmUnavailable(errno: 0)
            }
            shared.reset(baseline: baseline, gauge: gauge?())
            let context = SamplerContext(
                fd: fd, intervalNanoseconds: nanoseconds(interval), gauge: gauge, shared: shared)
            let thread: ThreadHandle
            do throws(MemorySamplerError) {
                thread = try ThreadHandle.spawn(context)
            } catch {
                close(fd)
                throw error
            }
            current = Session(thread: thread, baseline: baseline, startedAt: .now)
        }
    }

    /// Whether the sampling thread is running.
    public var isRunning: Bool { session.withLock { $0 != nil } }

    /// Stops and joins the sampling thread (after one last sample) and returns what it saw.
    @discardableResult
    public func stop() -> MemoryReport {
        let finished: Session? = session.withLock { current in
            defer { current = nil }
            return current
        }
        guard let finished else {
            return MemoryReport(
                baselineRSS: 0, peakRSS: 0, peakExtraRSS: 0, maxRSSLifetime: Self.lifetimeMaxRSS(),
                gaugePeak: nil, samples: 0, seconds: 0)
        }
        shared.stopRequested.store(true, ordering: .releasing)
        finished.thread.join()
        let elapsed = finished.startedAt.duration(to: .now)
        let peak = max(shared.peakRSS.load(ordering: .acquiring), finished.baseline)
        return MemoryReport(
            baselineRSS: finished.baseline,
            peakRSS: peak,
            peakExtraRSS: max(0, peak - finished.baseline),
            maxRSSLifetime: Self.lifetimeMaxRSS(),
            gaugePeak: gauge == nil ? nil : shared.peakGauge.load(ordering: .acquiring),
            samples: shared.samples.load(ordering: .acquiring),
            seconds: seconds(elapsed))
    }

    /// Runs `body` while sampling and returns its result with the report.
    public func measure<T>(_ body: () throws -> T) throws -> (T, MemoryReport) {
        try start()
        let value: T
        do {
            value = try body()
        } catch {
            stop()
            throw error
        }
        return (value, stop())
    }

    /// Runs the async `body` while sampling and returns its result with the report.
    public func measure<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> (T, MemoryReport) {
        try start()
        let value: T
        do {
            value = try await body()
        } catch {
            stop()
            throw error
        }
        return (value, stop())
    }
}

/// State written by the sampling thread and read by the controller.
final class SamplerShared: Sendable {
    let stopRequested = Atomic<Bool>(false)
    let peakRSS = Atomic<Int>(0)
    let peakGauge = Atomic<Int>(0)
    let samples = Atomic<Int>(0)

    func reset(baseline: Int, gauge: Int?) {
        stopRequested.store(false, ordering: .relaxed)
        peakRSS.store(baseline, ordering: .relaxed)
        peakGauge.store(gauge ?? 0, ordering: .relaxed)
        samples.store(0, ordering: .releasing)
    }
}

/// Everything the sampling thread needs; owned by that thread, which closes `fd` when done.
final class SamplerContext: Sendable {
    let fd: Int32
    let intervalNanoseconds: Int
    let gauge: (@Sendable () -> Int)?
    let shared: SamplerShared

    init(fd: Int32, intervalNanoseconds: Int, gauge: (@Sendable () -> Int)?, shared: SamplerShared) {
        self.fd = fd
        self.intervalNanoseconds = intervalNanoseconds
        self.gauge = gauge
        self.shared = shared
    }

    func sampleOnce() {
        if let rss = readStatmRSS(fd: fd) {
            _ = shared.peakRSS.max(rss, ordering: .relaxed)
        }
        if let gauge {
            _ = shared.peakGauge.max(gauge(), ordering: .relaxed)
        }
        shared.samples.add(1, ordering: .relaxed)
    }

    func run() {
        var pause = timespec(
            tv_sec: intervalNanoseconds / 1_000_000_000, tv_nsec: intervalNanoseconds % 1_000_000_000)
        while !shared.stopRequested.load(ordering: .acquiring) {
            sampleOnce()
            var remaining = timespec()
            _ = nanosleep(&pause, &remaining)
            pause = timespec(
                tv_sec: intervalNanoseconds / 1_000_000_000, tv_nsec: intervalNanoseconds % 1_000_000_000)
        }
        sampleOnce()
        close(fd)
    }
}

/// Reads the resident page count (second field) of `/proc/self/statm` with `pread` at offset 0.
func readStatmRSS(fd: Int32) -> Int? {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { buffer -> Int? in
        guard let base = buffer.baseAddress else { return nil }
        let count = pread(fd, base, buffer.count, 0)
        guard count > 0 else { return nil }
        var field = 0
        var value = 0
        var sawDigit = false
        for index in 0..<count {
            let byte = buffer[index]
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") {
                if field == 1 { return sawDigit ? value * pageSize : nil }
                field += 1
                value = 0
                sawDigit = false
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                guard !o1, !o2 else { return nil }
                value = sum
                sawDigit = true
            } else {
                return nil
            }
        }
        return field == 1 && sawDigit ? value * pageSize : nil
    }
}

private let pageSize: Int = {
    let size = sysconf(Int32(_SC_PAGESIZE))
    return size > 0 ? size : 4096
}()

private func nanoseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    return Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
}

func seconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) + Double(attoseconds) * 1e-18
}
