import Glibc

/// The physical reference every benchmark compares with: a sequential write (fsync included)
/// then a cold read of N bytes, with the engine's best settings (O_DIRECT, 4 MiB blocks, queue
/// depth 16, io_uring when available, registered buffers, the file preallocated inside the timed
/// region).
///
/// The read is cold: O_DIRECT, after `posix_fadvise(DONTNEED)` on the file. Data written is
/// pseudo-random (not zeros), from 4096-aligned pool buffers.
public struct RawDeviceProbe: Sendable {
    /// One timed phase.
    public struct Measurement: Sendable, Codable, Hashable {
        /// Bytes moved.
        public var bytes: Int64
        /// Wall-clock seconds (for writes, including the final fsync).
        public var seconds: Double
        /// `bytes / seconds`.
        public var bytesPerSecond: Double
    }

    /// What the probe used.
    public struct Settings: Sendable, Codable, Hashable {
        public var backend: String
        public var backendReason: String
        /// Whether the file was really opened with O_DIRECT (false when the file system refused it).
        public var direct: Bool
        public var blockSize: Int
        public var queueDepth: Int
        public var registeredBuffers: Bool
        public var numaReport: String
        public var path: String
    }

    /// The probe's result.
    public struct Result: Sendable, Codable, Hashable {
        public var write: Measurement?
        public var read: Measurement?
        /// A copy of the written file into a new one (cold reads and writes at once, the new file
        /// preallocated and fsynced): the ceiling of anything that reads a checkpoint while it
        /// writes another file, such as a consolidation. `bytes` counts each byte once.
        public var copy: Measurement?
        public var settings: Settings
        /// Whether the file was left in place.
        public var fileKept: Bool
    }

    /// Which phases to run.
    public enum Phases: String, Sendable, Codable, CaseIterable {
        case write, read, both
        /// Copy the existing `file` into a new file beside it (deleted afterwards).
        case copy
    }

    /// Directory where the probe file is created (ignored when `file` is given).
    public var directory: String
    /// Bytes to write and read (rounded up to 4096; for `.read` of an existing file, nil reads
    /// the whole file rounded down to 4096).
    public var bytes: Int64?
    /// An exact file to use (kept afterwards); `.read` requires it to exist.
    public var file: String?
    /// Keep the probe file.
    public var keepFile: Bool
    /// Phases to run.
    public var phases: Phases
    /// Engine settings: defaults to 4 MiB blocks, queue depth 16, 16 buffers, registered.
    public var configuration: IOEngineConfiguration
    /// Also measure a copy of the file (after the read; with `.both` only; `.copy` measures only that).
    public var measureCopy: Bool

    /// The engine settings of the probe.
    public static let bestConfiguration = IOEngineConfiguration(
        backend: .automatic, queueDepth: 16, bufferSize: 4 << 20, bufferCount: 16, registerBuffers: true)

    public init(
        directory: String, bytes: Int64?, file: String? = nil, keepFile: Bool = false, phases: Phases = .both,
        configuration: IOEngineConfiguration = RawDeviceProbe.bestConfiguration, measureCopy: Bool = false
    ) {
        self.measureCopy = measureCopy
        self.directory = directory
        self.bytes = bytes
        self.file = file
        self.keepFile = keepFile
        self.phases = phases
        self.configuration = configuration
    }

    /// Runs the probe.
    public func run() async throws -> Result {
        let engine = try IOEngine(configuration: configuration)
        do {
            let result = try await run(engine)
            await engine.shutdown()
            return result
        } catch {
            await engine.shutdown()
            throw error
        }
    }

    private func run(_ engine: IOEngine) async throws -> Result {
        let path = file ?? "\(directory)/ckpt-raw-probe-\(getpid()).bin"
        let keep = keepFile || file != nil
        let block = engine.buffers.bufferSize
        var settings = Settings(
            backend: engine.backend.rawValue, backendReason: engine.backendReason, direct: true, blockSize: block,
            queueDepth: engine.configuration.queueDepth, registeredBuffers: engine.buffersRegistered,
            numaReport: engine.numaReport, path: path)
        // Source/destination memory: every pool buffer, filled with pseudo-random bytes.
        var lent: [IOBuffer] = []
        defer { for b in lent { engine.buffers.release(b) } }
        var seed: UInt64 = 0x5DEE_CE66_D1CE_4E5B
        for _ in 0..<engine.buffers.bufferCount {
            guard let b = engine.buffers.tryAcquire() else { break }
            lent.append(b)
            let words = b.bytes.bindMemory(to: UInt64.self)
            for i in words.indices {
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                words[i] = seed
            }
        }
        guard !lent.isEmpty else { throw IOError.make(.other, "the probe could not take any pool buffer") }

        var write: Measurement?
        var read: Measurement?
        var total: Int64
        if phases == .write || phases == .both {
            total = Self.roundUp(bytes ?? (1 << 30))
            let f = try engine.open(path, mode: .write(create: true, truncate: true), direct: true)
            settings.direct = f.isDirect
            do {
                let start = ContinuousClock.now
                // Preallocated (timed), as the engine's own writers do: appending O_DIRECT writes
                // would run one at a time on ext4/XFS.
                try engine.preallocate(f, upTo: total)
                try await engine.perform(Self.requests(total, block, lent) { .write(f, offset: $0, from: UnsafeRawBufferPointer($1)) })
                try await engine.fsync(f)
                write = Self.measure(total, since: start)
                try engine.close(f)
            } catch {
                try? engine.close(f)
                if !keep { unlink(path) }
                throw error
            }
        }
        if phases == .read || phases == .both {
            let f = try engine.open(path, mode: .read, direct: true)
            settings.direct = settings.direct && f.isDirect
            do {
                let size = try engine.size(of: f)
                total = Alignment.roundDown(min(size, bytes.map(Self.roundUp) ?? size))
                try engine.dropCache(f)
                let start = ContinuousClock.now
                try await engine.perform(Self.requests(total, block, lent) { .read(f, offset: $0, into: $1) })
                read = Self.measure(total, since: start)
                try engine.close(f)
            } catch {
                try? engine.close(f)
                if !keep { unlink(path) }
                throw error
            }
        }
        var copy: Measurement?
        if phases == .copy || (measureCopy && phases == .both) {
            let target = path + ".copy"
            do {
                copy = try await Self.copy(
                    path, to: target, bytes: self.bytes.map(Self.roundUp), block: block, buffers: lent, engine: engine)
            } catch {
                unlink(target)
                if !keep { unlink(path) }
                throw error
            }
            unlink(target)
        }
        if !keep { unlink(path) }
        return Result(write: write, read: read, copy: copy, settings: settings, fileKept: keep)
    }

    /// Copies `bytes` of `source` (cold; nil: the whole file, rounded down to 4096) into a new
    /// preallocated file, one block per pool buffer in flight (each block read, then written),
    /// then fsyncs it.
    private static func copy(
        _ source: String, to target: String, bytes: Int64?, block: Int, buffers: [IOBuffer], engine: IOEngine
    ) async throws -> Measurement {
        let input = try engine.open(source, mode: .read, direct: true)
        defer { try? engine.close(input) }
        let size = try engine.size(of: input)
        let total = Alignment.roundDown(min(size, bytes ?? size))
        let output = try engine.open(target, mode: .write(create: true, truncate: true), direct: true)
        defer { try? engine.close(output) }
        try engine.dropCache(input)
        let start = ContinuousClock.now
        try engine.preallocate(output, upTo: total)
        let blocks = Int((total + Int64(block) - 1) / Int64(block))
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Lane k copies blocks k, k + lanes, ... through buffer k.
            for (lane, buffer) in buffers.enumerated() {
                group.addTask {
                    var index = lane
                    while index < blocks {
                        let at = Int64(index) * Int64(block)
                        let n = Int(min(Int64(block), total - at))
                        let memory = UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<n])
                        try await engine.read(input, at: at, into: memory)
                        try await engine.write(output, at: at, from: UnsafeRawBufferPointer(memory))
                        index += buffers.count
                    }
                }
            }
            try await group.waitForAll()
        }
        try await engine.fsync(output)
        return measure(total, since: start)
    }

    private static func roundUp(_ n: Int64) -> Int64 { Alignment.roundUp(max(n, 4096)) }

    private static func requests(
        _ total: Int64, _ block: Int, _ buffers: [IOBuffer], _ make: (Int64, UnsafeMutableRawBufferPointer) -> IORequest
    ) -> [IORequest] {
        var out: [IORequest] = []
        out.reserveCapacity(Int(total / Int64(block)) + 1)
        var at: Int64 = 0
        var i = 0
        while at < total {
            let n = Int(min(Int64(block), total - at))
            let b = buffers[i % buffers.count].bytes
            out.append(make(at, UnsafeMutableRawBufferPointer(rebasing: b[0..<n])))
            at += Int64(n)
            i += 1
        }
        return out
    }

    private static func measure(_ bytes: Int64, since start: ContinuousClock.Instant) -> Measurement {
        let d = ContinuousClock.now - start
        let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        return Measurement(bytes: bytes, seconds: seconds, bytesPerSecond: seconds > 0 ? Double(bytes) / seconds : 0)
    }

    /// Parses sizes like `4096`, `512K`, `64M`, `1G`, `2GiB`, `1.5G` (binary units).
    public static func parseSize(_ text: String) -> Int64? {
        var digits = text.trimmingWhitespace()
        var scale: Double = 1
        for (suffixes, s) in [(["kib", "kb", "k"], 1024.0), (["mib", "mb", "m"], 1_048_576.0), (["gib", "gb", "g"], 1_073_741_824.0), (["tib", "tb", "t"], 1_099_511_627_776.0)] {
            if let suffix = suffixes.first(where: { digits.lowercased().hasSuffix($0) }) {
                digits = String(digits.dropLast(suffix.count))
                scale = s
                break
            }
        }
        guard let value = Double(digits), value > 0, value.isFinite else { return nil }
        return Int64(value * scale)
    }

    /// A human-readable table of a result.
    public static func table(_ r: Result) -> String {
        func gbps(_ m: Measurement) -> String { String(format2(m.bytesPerSecond / 1e9)) + " GB/s" }
        func row(_ name: String, _ m: Measurement?) -> String {
            guard let m else { return "\(name.padding(6))  -" }
            return "\(name.padding(6))  \(String(m.bytes).padding(14))  \(format2(m.seconds).padding(9))  \(gbps(m))"
        }
        return """
            raw device probe: \(r.settings.path)
              backend: \(r.settings.backend) (\(r.settings.backendReason))
              \(r.settings.direct ? "O_DIRECT" : "buffered (O_DIRECT refused by the file system)"), block \(r.settings.blockSize) bytes, queue depth \(r.settings.queueDepth), \
            registered buffers: \(r.settings.registeredBuffers)
              NUMA: \(r.settings.numaReport)
            phase   bytes           seconds    throughput
            \(row("write", r.write))   (includes fsync)
            \(row("read", r.read))   (cold: O_DIRECT after fadvise DONTNEED)
            \(row("copy", r.copy))   (cold read into a new file, fsync)
            """
    }

    static func format2(_ x: Double) -> String {
        let scaled = (x * 1000).rounded()
        let whole = Int(scaled / 1000)
        let frac = Int(abs(scaled).truncatingRemainder(dividingBy: 1000))
        let f = String(frac)
        return "\(whole).\(String(repeating: "0", count: 3 - f.count))\(f)"
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    fileprivate func trimmingWhitespace() -> String {
        String(drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
