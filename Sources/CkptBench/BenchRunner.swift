#if canImport(Glibc)
import Glibc
#endif
import Ckpt
import CkptFormat
import CkptIO
import Foundation
import Synchronization

/// Runs the `ckpt-bench` scenarios on the built-in workload and returns the report.
///
/// Per run: the raw-device probe (write with fsync, cold read; the reference of every ratio);
/// for every save rank count N: the sharded save by N ranks and its cold load by N ranks; for
/// the largest N (the *primary*): the resharded loads N to M, the streaming consolidation to
/// torch.save and safetensors, the single-file baseline (full state gathered on rank 0 through
/// the communicator, written as one torch.save file with fsync) and the async save (caller
/// blocked vs a plain memcpy of the shard). Each scenario is repeated ``BenchOptions/repeats``
/// times; its memory is sampled by a ``MemorySampler`` whose gauge is the bytes held by the
/// ranks' engine buffer pools. Every load is verified against ``BenchContent`` outside the timed
/// region, so a broken engine cannot report a fast wrong load.
///
/// Ranks are tasks of this process (``InProcessGroup``), each with its own ``IOEngine``, as
/// each rank of a job has its own.
public struct BenchRunner: Sendable {
    /// The settings.
    public let options: BenchOptions
    /// Progress display (stderr).
    public let progress: ProgressReporter
    /// Receives one-line messages for the person at the terminal (warnings, phases).
    public let log: @Sendable (String) -> Void

    /// Creates a runner.
    public init(
        options: BenchOptions, progress: ProgressReporter = ProgressReporter(enabled: false),
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.options = options
        self.progress = progress
        self.log = log
    }

    /// The workload the options describe.
    public func workload() throws -> BenchWorkload {
        try BenchWorkload.sized(targetBytes: options.sizeBytes, mix: options.stateMix)
    }

    /// Runs every scenario. Checks the directory, disk space and memory first.
    public func run() async throws -> BenchReport {
        let provenance = RunProvenance.current()
        let workload = try workload()
        try options.validateEnvironment(stateBytes: workload.totalBytes)
        let machine = MachineDescription.current(directory: options.directory)
        var notes: [String] = []
        if RunProvenance.buildConfiguration == "debug" {
            notes.append("debug build: numbers are not representative (use swift run -c release ckpt-bench)")
        }
        if let load = Self.loadAverage() { notes.append("load average at start: \(load)") }

        let work = options.directory + "/ckpt-bench-\(getpid())"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer {
            if !options.keep { try? FileManager.default.removeItem(atPath: work) }
        }
        var context = try RunContext(options: options, workload: workload, work: work, progress: progress, log: log)
        let result: RunOutcome
        do {
            result = try await context.runAll()
        } catch {
            progress.finish()
            await context.shutdown()
            throw error
        }
        await context.shutdown()
        if let load = Self.loadAverage() { notes.append("load average at end: \(load)") }
        if options.keep { notes.append("checkpoints kept in \(work)") }
        notes.append(contentsOf: result.notes)
        return BenchReport(
            provenance: provenance, machine: machine, options: options, workload: WorkloadSummary(workload),
            rawDevice: result.raw, scenarios: result.scenarios, rankSweep: result.sweep,
            targets: Self.targets(
                scenarios: result.scenarios, raw: result.raw, options: options, workload: workload,
                memoryBacked: ["tmpfs", "ramfs"].contains(machine.storage?.fileSystemType ?? "")),
            notes: notes)
    }

    /// `/proc/loadavg`'s first three fields.
    static func loadAverage() -> String? {
        guard let text = SystemProbe.readTrimmed("/proc/loadavg") else { return nil }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// The project's targets against the scenarios measured (those present only). On storage, the
    /// committed sharded save, every cold load and the consolidations within 5% of the raw device
    /// (its write, read and copy, measured alongside); on memory-backed storage (tmpfs) the probe
    /// measures memory copies, not a device, and those checks are left out (the target there is
    /// PyTorch, `scripts/bench-vs-torch`).
    static func targets(
        scenarios: [ScenarioResult], raw: RawDeviceReference?, options: BenchOptions, workload: BenchWorkload,
        memoryBacked: Bool = false
    ) -> [TargetCheck] {
        var checks: [TargetCheck] = []
        func ratio(_ scenario: ScenarioResult) -> Double? {
            guard !memoryBacked,
                let raw = scenario.adjacentRawGBps ?? raw?.gigabytesPerSecond(for: scenario.direction), raw > 0
            else { return nil }
            return scenario.throughputGBps / raw
        }
        let withinRaw = 0.95
        for scenario in scenarios {
            switch (scenario.group, scenario.direction) {
            case ("sharded", .save), ("sharded", .load), ("resharded", .load), ("consolidation", .copy): break
            default: continue
            }
            if let r = ratio(scenario) {
                checks.append(.ratio(
                    "\(scenario.name) vs raw \(scenario.direction.rawMeasurement)", value: r, bound: withinRaw))
            }
        }
        let budget = 64 << 20
        for scenario in scenarios where scenario.group == "sharded" || scenario.group == "resharded" {
            guard let extra = scenario.peakExtraBytes else { continue }
            let ranks = max(1, scenario.direction == .load ? (scenario.loadRanks ?? 1) : (scenario.ranks ?? 1))
            let perRank = extra / ranks
            checks.append(TargetCheck(
                name: "\(scenario.name) extra memory per rank", target: "<= \(ByteFormat.binary(budget))",
                measured: ByteFormat.binary(perRank), met: perRank <= budget))
        }
        for scenario in scenarios where scenario.group == "async" {
            if let blocked = scenario.callerBlocked?.median,
                let memcpy = scenario.phases.first(where: { $0.name == "memcpy" })?.time.median, memcpy > 0
            {
                checks.append(.ratio(
                    "\(scenario.name) caller blocked vs memcpy", value: blocked / memcpy, bound: 1.2, atMost: true,
                    asPercent: false))
            }
        }
        return checks
    }
}

/// What ``RunContext/runAll()`` produced.
struct RunOutcome {
    var raw: RawDeviceReference?
    var scenarios: [ScenarioResult] = []
    var sweep: [RankSweepPoint] = []
    var notes: [String] = []
}

/// Per-repeat measurements of one scenario.
struct Samples {
    var seconds: [Double] = []
    var peakRSS = 0
    var peakExtra = 0
    var gaugePeak = 0

    mutating func add(seconds: Double, memory: MemoryReport) {
        self.seconds.append(seconds)
        peakRSS = max(peakRSS, memory.peakRSS)
        peakExtra = max(peakExtra, memory.peakExtraRSS)
        gaugePeak = max(gaugePeak, memory.gaugePeak ?? 0)
    }
}

/// The state of one run: engines, directories, the workload.
struct RunContext {
    let options: BenchOptions
    let workload: BenchWorkload
    let content: BenchContent
    let work: String
    let progress: ProgressReporter
    let log: @Sendable (String) -> Void
    let engines: [IOEngine]
    /// The engine of the consolidations (nil when they do not run).
    let consolidationEngine: IOEngine?
    let checkpointOptions: CheckpointOptions
    let stateBytes: Int
    let expectedValues: [String: TorchValue]
    private var step = 0
    private let totalSteps: Int

    init(
        options: BenchOptions, workload: BenchWorkload, work: String, progress: ProgressReporter,
        log: @escaping @Sendable (String) -> Void
    ) throws {
        self.options = options
        self.workload = workload
        self.content = BenchContent(seed: options.seed)
        self.work = work
        self.progress = progress
        self.log = log
        let primary = options.ranks.max() ?? 1
        let loadRanks = options.effectiveLoadRanks(saveRanks: primary)
        let rankCount = max(options.ranks.max() ?? 1, loadRanks.max() ?? 1)
        var engines: [IOEngine] = []
        for _ in 0..<rankCount {
            engines.append(try IOEngine(configuration: Self.engineConfiguration(options)))
        }
        self.engines = engines
        // Consolidations run on an engine whose pool holds the streaming path's buffers (made once,
        // as a trainer's or a tool's engine is): resident memory, registered for fixed-buffer I/O.
        if options.runs("consolidate") {
            var configuration = Self.engineConfiguration(options)
            configuration.bufferCount = max(configuration.bufferCount, Consolidator.streamPoolBuffers())
            self.consolidationEngine = try IOEngine(configuration: configuration)
        } else {
            self.consolidationEngine = nil
        }
        self.checkpointOptions = CheckpointOptions(
            direct: options.ioMode == .direct, zipCRC32: options.zipCRC32, writeChecksums: options.writeChecksums)
        self.stateBytes = workload.totalBytes
        self.expectedValues = workload.values.mapValues(\.torchValue)
        // Steps for the progress line: probe, per N save+load, primary extras.
        let perN = 2
        let extras = (options.runs("reshard") ? loadRanks.filter { $0 != primary }.count : 0)
            + (options.runs("consolidate") ? 2 : 0) + (options.runs("single-file") ? 1 : 0) + (options.runs("async") ? 1 : 0)
        self.totalSteps = (options.rawProbe ? 1 : 0) + perN * options.ranks.count + extras
    }

    static func engineConfiguration(_ options: BenchOptions) -> IOEngineConfiguration {
        var configuration = IOEngineConfiguration()
        switch options.engine {
        case .uring: configuration.backend = .ioUring
        case .posix: configuration.backend = .posix
        case .auto: configuration.backend = .automatic
        }
        return configuration
    }

    func shutdown() async {
        for engine in engines { await engine.shutdown() }
        await consolidationEngine?.shutdown()
    }

    /// Sum of the bytes held by every rank's buffer pool (the sampler's gauge).
    var gauge: @Sendable () -> Int {
        let engines = self.engines + (consolidationEngine.map { [$0] } ?? [])
        return { engines.reduce(0) { $0 + $1.buffers.heldBytes } }
    }

    mutating func announce(_ what: String) {
        step += 1
        progress.update("[\(step)/\(totalSteps)] \(what)")
    }

    func repeatProgress(_ what: String, _ index: Int) {
        progress.update("[\(step)/\(totalSteps)] \(what), repeat \(index + 1)/\(options.repeats)")
    }

    // MARK: The run

    mutating func runAll() async throws -> RunOutcome {
        var outcome = RunOutcome()
        if options.rawProbe {
            announce("raw device probe")
            outcome.raw = try await rawProbe()
        }
        let primary = options.ranks.max() ?? 1
        // Non-primary rank counts first (their states are freed), the primary last.
        let order = options.ranks.filter { $0 != primary } + [primary]
        var sweep: [Int: RankSweepPoint] = [:]
        for ranks in order {
            let layout = try workload.shardLayout(ranks: ranks)
            let states = try (0..<ranks).map { rank in
                try RankState.make(
                    rank: rank, chunks: layout.chunks(rank: rank), values: workload.values, valuePlaceholders: false,
                    content: content)
            }
            let directory = work + "/sharded-\(ranks)r"
            announce("sharded save, \(ranks) ranks")
            let save = try await shardedSave(states: states, directory: directory)
            outcome.scenarios.append(save)
            announce("load \(ranks) ranks")
            let sameLoad = try await load(directory: directory, savedRanks: ranks, loadRanks: ranks)
            outcome.scenarios.append(sameLoad)
            sweep[ranks] = RankSweepPoint(ranks: ranks, save: save, load: sameLoad)
            if ranks == primary, options.runs("reshard") {
                for m in options.effectiveLoadRanks(saveRanks: ranks) where m != ranks {
                    announce("load \(ranks) -> \(m) ranks")
                    outcome.scenarios.append(try await load(directory: directory, savedRanks: ranks, loadRanks: m))
                }
            }
            if ranks == primary, options.runs("consolidate") {
                for format in [ConsolidationFormat.torchSave, .safetensors] {
                    announce("consolidate to \(format == .torchSave ? "torch.save" : "safetensors")")
                    outcome.scenarios.append(try await consolidate(directory: directory, format: format))
                }
            }
            if ranks == primary, options.runs("single-file") {
                announce("single-file baseline")
                outcome.scenarios.append(try await singleFile(states: states, layout: layout))
            }
            if ranks == primary, options.runs("async") {
                announce("async save")
                let (async, asyncNotes) = try await asyncSave(states: states)
                outcome.scenarios.append(async)
                outcome.notes.append(contentsOf: asyncNotes)
            }
            if !options.keep { try? FileManager.default.removeItem(atPath: directory) }
        }
        if options.ranks.count > 1 {
            outcome.sweep = options.ranks.sorted().compactMap { sweep[$0] }
        }
        progress.finish()
        return outcome
    }

    // MARK: Helpers

    /// Runs `body` on `count` ranks concurrently (rank tasks of one process); on the first
    /// failure the group is aborted so no rank waits forever in a collective.
    func onRanks<T: Sendable>(
        _ count: Int, group: InProcessGroup?, _ body: @escaping @Sendable (Int) async throws -> T
    ) async throws -> [T] {
        try await withThrowingTaskGroup(of: (Int, T).self) { tasks in
            for rank in 0..<count {
                tasks.addTask {
                    do {
                        return (rank, try await body(rank))
                    } catch {
                        group?.abort(CheckpointError(.aborted, "rank \(rank) failed: \(error)", underlying: error))
                        throw error
                    }
                }
            }
            var results = [T?](repeating: nil, count: count)
            for try await (rank, value) in tasks { results[rank] = value }
            return results.compactMap { $0 }
        }
    }

    /// Times `body` while sampling memory.
    func measured<T>(_ body: () async throws -> T) async throws -> (T, Double, MemoryReport) {
        let sampler = MemorySampler(gauge: gauge)
        try sampler.start()
        let start = ContinuousClock.now
        let value: T
        do {
            value = try await body()
        } catch {
            sampler.stop()
            throw error
        }
        let elapsed = runSeconds(ContinuousClock.now - start)
        return (value, elapsed, sampler.stop())
    }

    /// Drops the page cache of every file in `directory` (posix_fadvise DONTNEED), so the next
    /// buffered read comes from the device. O_DIRECT loads do not need it; it is done anyway.
    func dropCache(directory: String) throws {
        let engine = engines[0]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names {
            let path = directory + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                continue
            }
            try dropCache(file: path, engine: engine)
        }
    }

    func dropCache(file path: String, engine: IOEngine) throws {
        let file = try engine.open(path, mode: .read)
        defer { try? engine.close(file) }
        try engine.dropCache(file)
    }

    // MARK: Raw device

    /// The probe's best settings, on the backend the run uses.
    var probeConfiguration: IOEngineConfiguration {
        var configuration = RawDeviceProbe.bestConfiguration
        configuration.backend = Self.engineConfiguration(options).backend
        return configuration
    }

    func rawProbe() async throws -> RawDeviceReference {
        var writes: [Double] = []
        var reads: [Double] = []
        var copies: [Double] = []
        var method = ""
        // The copy reference is for consolidation: measured only when consolidations run.
        let measureCopy = options.runs("consolidate")
        for index in 0..<options.repeats {
            repeatProgress("raw device probe", index)
            // The file is kept for the adjacent probes (reads and copies).
            let probe = RawDeviceProbe(
                directory: work, bytes: Int64(stateBytes), file: probeFile, configuration: probeConfiguration,
                measureCopy: measureCopy)
            let result = try await probe.run()
            if let write = result.write { writes.append(write.seconds) }
            if let read = result.read { reads.append(read.seconds) }
            if let copy = result.copy { copies.append(copy.seconds) }
            let s = result.settings
            method = "\(s.backend)\(s.direct ? " O_DIRECT" : " buffered (O_DIRECT refused)"), "
                + "\(ByteFormat.binary(s.blockSize)) blocks, queue depth \(s.queueDepth), write with fsync, cold read"
                + (measureCopy ? ", copy = cold read into a new file with fsync" : "")
        }
        return RawDeviceReference(
            method: method, bytes: probeBytes, writeSeconds: writes.isEmpty ? nil : writes,
            readSeconds: reads.isEmpty ? nil : reads, copySeconds: copies.isEmpty ? nil : copies)
    }

    /// The probe's file, kept for the adjacent read and copy probes.
    var probeFile: String { work + "/raw-probe.bin" }

    /// The raw device measured right before a scenario's repeat, in its direction: seconds for
    /// the state's bytes (nil without the raw probe). Writes go to a new file each time, as the
    /// scenarios write new files; the previous one is deleted and the file system settles first,
    /// so the work of that deletion (discards on a `discard` mount) lands before the probe, not
    /// inside the scenario's timed region. Reads and copies use the first probe's file.
    func adjacentProbe(_ direction: ScenarioDirection) async throws -> Double? {
        guard options.rawProbe else { return nil }
        let writeFile = work + "/raw-probe-write.bin"
        unlink(writeFile)
        settle()
        let phases: RawDeviceProbe.Phases = switch direction {
        case .save: .write
        case .load: .read
        case .copy: .copy
        }
        let result = try await RawDeviceProbe(
            directory: work, bytes: Int64(stateBytes), file: direction == .save ? writeFile : probeFile, phases: phases,
            configuration: probeConfiguration
        ).run()
        let measurement = switch direction {
        case .save: result.write
        case .load: result.read
        case .copy: result.copy
        }
        return measurement?.seconds
    }

    /// Lets the file system finish what earlier deletions left it (a journal commit, and with a
    /// `discard` mount the discards of the freed blocks): an fsync of the benchmark directory,
    /// before every probe and every timed repeat, so neither pays for the other's cleanup.
    func settle() {
        let fd = open(work, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// Bytes the probes move (the state, rounded up to 4096).
    var probeBytes: Int { (stateBytes + 4095) / 4096 * 4096 }

    // MARK: Sharded save

    /// One committed save of `states` (a rank each) into `directory`.
    func save(_ states: [RankState], to directory: String) async throws -> [SaveReport] {
        let group = InProcessGroup(worldSize: states.count)
        let engines = self.engines, ckptOptions = self.checkpointOptions
        return try await onRanks(states.count, group: group) { rank in
            try await Checkpointer(engine: engines[rank], communicator: group.communicator(rank: rank), options: ckptOptions)
                .save(states[rank].state, to: directory)
        }
    }

    func shardedSave(states: [RankState], directory: String) async throws -> ScenarioResult {
        let ranks = states.count
        let name = "sharded save \(ranks)r"
        var samples = Samples()
        var bufferPeak = 0
        var fileBytes = 0
        var plan: [Double] = [], write: [Double] = [], commit: [Double] = []
        var raw: [Double] = []
        // The first save of the ranks' engines (the kernel's io_uring workers start, the file
        // system's first allocations in the directory) is reported apart, as a trainer's first
        // checkpoint is a one-time cost; the repeats are the steady state of periodic saves.
        repeatProgress(name + " (first)", 0)
        try? FileManager.default.removeItem(atPath: directory)
        settle()
        let firstStart = ContinuousClock.now
        _ = try await save(states, to: directory)
        let firstSeconds = runSeconds(ContinuousClock.now - firstStart)
        for index in 0..<options.repeats {
            repeatProgress(name, index)
            try? FileManager.default.removeItem(atPath: directory)
            if let seconds = try await adjacentProbe(.save) { raw.append(seconds) }
            settle()
            let (reports, seconds, memory) = try await measured { try await save(states, to: directory) }
            samples.add(seconds: seconds, memory: memory)
            bufferPeak = max(bufferPeak, reports.map(\.peakBufferBytes).max() ?? 0)
            fileBytes = reports.reduce(0) { $0 + $1.fileBytes }
            // Rank 0's split (it plans and commits; every rank writes).
            if let first = reports.first {
                plan.append(first.planSeconds)
                write.append(reports.map(\.writeSeconds).max() ?? first.writeSeconds)
                commit.append(first.commitSeconds)
            }
        }
        return ScenarioResult(
            name: name, group: "sharded", direction: .save, bytesMoved: stateBytes, seconds: samples.seconds,
            peakRSSBytes: samples.peakRSS, peakExtraBytes: samples.peakExtra, engineBufferPeakBytes: samples.gaugePeak,
            phases: [
                ScenarioPhase(name: "plan", seconds: plan), ScenarioPhase(name: "write", seconds: write),
                ScenarioPhase(name: "commit", seconds: commit),
            ],
            ranks: ranks,
            notes: [
                "committed", "rank pool peak \(ByteFormat.binary(bufferPeak))", "files \(ByteFormat.binary(fileBytes))",
                "first save \(ByteFormat.seconds(firstSeconds)) (not in the repeats)",
            ])
            .withAdjacentRaw(seconds: raw, bytes: probeBytes)
    }

    // MARK: Loads

    func load(directory: String, savedRanks: Int, loadRanks: Int) async throws -> ScenarioResult {
        let name = savedRanks == loadRanks ? "load \(loadRanks)r" : "load \(savedRanks)r->\(loadRanks)r"
        let layout = try workload.targetLayout(ranks: loadRanks)
        let targets = try (0..<loadRanks).map { rank in
            try RankState.make(
                rank: rank, chunks: layout.chunks(rank: rank), values: workload.values, valuePlaceholders: true,
                content: nil)
        }
        var samples = Samples()
        var read = 0
        var needed = 0
        var bufferPeak = 0
        var verified = 0
        var phases: [LoadPhases] = []
        var readCounts = (reads: 0, direct: 0)
        var fromIndex = true
        var raw: [Double] = []
        var replayed: [Double] = []
        var requests = 0
        var requestBytes = 0
        for index in 0..<options.repeats {
            repeatProgress(name, index)
            if let seconds = try await adjacentProbe(.load) { raw.append(seconds) }
            // Poison the destination so a load that writes nothing cannot pass verification.
            for target in targets {
                target.arena.bytes.initializeMemory(as: UInt8.self, repeating: 0)
            }
            try dropCache(directory: directory)
            let group = InProcessGroup(worldSize: loadRanks)
            let engines = self.engines, ckptOptions = self.checkpointOptions
            settle()
            let (reports, seconds, memory) = try await measured {
                try await onRanks(loadRanks, group: group) { rank in
                    let checkpointer = Checkpointer(
                        engine: engines[rank], communicator: group.communicator(rank: rank), options: ckptOptions)
                    return try await checkpointer.load(into: targets[rank].state, from: directory)
                }
            }
            samples.add(seconds: seconds, memory: memory)
            read = reports.reduce(0) { $0 + $1.payloadBytesRead + $1.headerBytesRead }
            needed = reports.reduce(0) { $0 + $1.neededBytes }
            bufferPeak = max(bufferPeak, reports.map(\.peakBufferBytes).max() ?? 0)
            phases.append(contentsOf: reports.map(\.phases))
            readCounts = (reports.reduce(0) { $0 + $1.readCount }, reports.reduce(0) { $0 + $1.directReadCount })
            fromIndex = fromIndex && reports.allSatisfy(\.metadataFromIndex)
            // Outside the timed region: check the bytes and the values.
            verified = 0
            for (rank, target) in targets.enumerated() {
                verified += try target.verify(content: content, full: options.fullVerify, salt: UInt64(index))
                try checkValues(reports[rank].values, rank: rank)
            }
            if options.rawProbe, reports.contains(where: { !$0.dataReads.isEmpty }) {
                replayed.append(try await replay(reports.map(\.dataReads), directory: directory, memory: targets.map(\.arena)))
                requests = reports.reduce(0) { $0 + $1.dataReads.count }
                requestBytes = reports.reduce(0) { $0 + $1.dataReads.reduce(0) { $0 + $1.length } }
            }
        }
        var result = ScenarioResult(
            name: name, group: savedRanks == loadRanks ? "sharded" : "resharded", direction: .load,
            bytesMoved: stateBytes, seconds: samples.seconds, peakRSSBytes: samples.peakRSS,
            peakExtraBytes: samples.peakExtra, engineBufferPeakBytes: samples.gaugePeak, bytesRead: read,
            bytesNeeded: needed, ranks: savedRanks, loadRanks: loadRanks,
            notes: [
                options.ioMode == .direct ? "cold, O_DIRECT" : "cold, cache dropped",
                "rank pool peak \(ByteFormat.binary(bufferPeak))",
                "verified \(ByteFormat.binary(verified))\(options.fullVerify ? " (all)" : "")",
                "\(readCounts.reads) reads, \(readCounts.direct) straight into tensor memory",
                fromIndex ? "metadata from .ckpt-index" : "metadata decoded from .metadata",
                Self.describe(phases),
            ])
            .withAdjacentRaw(seconds: raw, bytes: probeBytes)
            .withPatternReplay(seconds: replayed)
        if let ratio = result.patternRatio, let replay = result.patternRaw {
            result.notes.append(
                "its \(requests) requests (\(ByteFormat.binary(requestBytes / max(1, requests))) on average) replayed raw: "
                    + String(format: "%.2f GB/s, load at %.0f%% of that", ScenarioResult.gigabytesPerSecond(bytes: stateBytes, seconds: replay.median), ratio * 100))
        }
        return result
    }

    /// The device reading what the ranks' loads read (``ReadReplay``), all ranks at once on their
    /// engines, cold: seconds.
    func replay(_ reads: [[LoadRead]], directory: String, memory: [TensorBuffer]) async throws -> Double {
        try dropCache(directory: directory)
        let engines = self.engines, direct = options.ioMode == .direct
        settle()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (rank, list) in reads.enumerated() {
                group.addTask {
                    try await ReadReplay.run(list, directory: directory, engine: engines[rank], memory: memory[rank], direct: direct)
                }
            }
            try await group.waitForAll()
        }
        return runSeconds(ContinuousClock.now - start)
    }

    /// Median per phase over every rank and repeat.
    static func describe(_ phases: [LoadPhases]) -> String {
        func median(_ key: KeyPath<LoadPhases, Double>) -> String {
            let values = phases.map { $0[keyPath: key] }.sorted()
            guard !values.isEmpty else { return "-" }
            return String(format: "%.3f", values[values.count / 2])
        }
        return "rank phases (median s): metadata \(median(\.metadata)), plan \(median(\.plan)), heads \(median(\.heads)), reads \(median(\.reads)), finish \(median(\.finish))"
    }

    func checkValues(_ values: [String: TorchValue], rank: Int) throws {
        for (fqn, expected) in expectedValues {
            let actual = values[fqn]
            guard actual == expected else {
                throw BenchRunError.valueMismatch(
                    rank: rank, fqn: fqn, expected: "\(expected)", actual: actual.map { "\($0)" } ?? "missing")
            }
        }
    }

    // MARK: Consolidation

    func consolidate(directory: String, format: ConsolidationFormat) async throws -> ScenarioResult {
        let name = format == .torchSave ? "consolidate torch.save" : "consolidate safetensors"
        let output = work + "/consolidated" + (format == .torchSave ? ".pt" : ".safetensors")
        var samples = Samples()
        var fileBytes = 0
        var working = 0
        var streamed = false
        var readBytes: Int?
        var raw: [Double] = []
        for index in 0..<options.repeats {
            repeatProgress(name, index)
            try? FileManager.default.removeItem(atPath: output)
            if let seconds = try await adjacentProbe(.copy) { raw.append(seconds) }
            try dropCache(directory: directory)
            let consolidator = Consolidator(engine: consolidationEngine ?? engines[0], options: checkpointOptions)
            settle()
            let (report, seconds, memory) = try await measured {
                try await consolidator.consolidate(directory, to: output, format: format, overwrite: true)
            }
            samples.add(seconds: seconds, memory: memory)
            fileBytes = report.fileBytes
            working = max(working, report.peakWorkingBytes)
            streamed = report.streamed
            readBytes = report.dataBytesRead
            try? FileManager.default.removeItem(atPath: output)
        }
        return ScenarioResult(
            name: name, group: "consolidation", direction: .copy, bytesMoved: stateBytes, seconds: samples.seconds,
            peakRSSBytes: samples.peakRSS, peakExtraBytes: samples.peakExtra, engineBufferPeakBytes: samples.gaugePeak,
            notes: ["\(ByteFormat.binary(fileBytes)) file, fsync", "working set \(ByteFormat.binary(working))"]
                + (streamed
                    ? ["streamed: whole windows of the data files (read \(String(format: "%.2f", Double(readBytes ?? 0) / Double(max(1, stateBytes))))x the tensor bytes), images of the output"]
                    : ["tensor-by-tensor batches"]))
            .withAdjacentRaw(seconds: raw, bytes: probeBytes)
    }

    // MARK: Single-file baseline

    /// Tensors grouped so that each gather moves about 64 MiB (FSDP's full state dict gathers
    /// parameter by parameter; buckets keep the number of collectives small).
    static func buckets(_ tensors: [BenchTensor], bytes: Int = 64 << 20) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = 0
        var size = 0
        for (index, tensor) in tensors.enumerated() {
            size += tensor.byteCount
            if size >= bytes {
                result.append(start..<(index + 1))
                start = index + 1
                size = 0
            }
        }
        if start < tensors.count { result.append(start..<tensors.count) }
        return result
    }

    func singleFile(states: [RankState], layout: BenchShardLayout) async throws -> ScenarioResult {
        let ranks = states.count
        let name = "single-file save \(ranks)r"
        let output = work + "/single-file.pt"
        var samples = Samples()
        var gatherSeconds: [Double] = []
        var writeSeconds: [Double] = []
        var fileBytes = 0
        let tensors = workload.tensors
        let buckets = Self.buckets(tensors)
        // Where each rank's chunk of tensor i sits in the rank's arena.
        var chunkIndex: [[String: RankState.Placement]] = []
        for state in states {
            var map: [String: RankState.Placement] = [:]
            for placement in state.placements { map[placement.chunk.fqn] = placement }
            chunkIndex.append(map)
        }
        let placements = chunkIndex
        let values = workload.values
        let direct = options.ioMode == .direct
        var raw: [Double] = []
        for index in 0..<options.repeats {
            repeatProgress(name, index)
            try? FileManager.default.removeItem(atPath: output)
            if let seconds = try await adjacentProbe(.save) { raw.append(seconds) }
            let group = InProcessGroup(worldSize: ranks)
            let engine = engines[0]
            settle()
            let (phases, seconds, memory) = try await measured {
                try await onRanks(ranks, group: group) { rank -> (Double, Double, Int) in
                    try await SingleFileBaseline.run(
                        rank: rank, communicator: group.communicator(rank: rank), states: states,
                        placements: placements, tensors: tensors, buckets: buckets, values: values,
                        engine: engine, output: output, direct: direct)
                }
            }
            samples.add(seconds: seconds, memory: memory)
            gatherSeconds.append(phases[0].0)
            writeSeconds.append(phases[0].1)
            fileBytes = phases[0].2
            if index == 0 { try verifySingleFile(output) }
            try? FileManager.default.removeItem(atPath: output)
        }
        return ScenarioResult(
            name: name, group: "single-file", direction: .save, bytesMoved: stateBytes, seconds: samples.seconds,
            peakRSSBytes: samples.peakRSS, peakExtraBytes: samples.peakExtra, engineBufferPeakBytes: samples.gaugePeak,
            phases: [ScenarioPhase(name: "gather", seconds: gatherSeconds), ScenarioPhase(name: "write", seconds: writeSeconds)],
            ranks: ranks,
            notes: ["gather to rank 0, one torch.save file \(ByteFormat.binary(fileBytes)), fsync"])
            .withAdjacentRaw(seconds: raw, bytes: probeBytes)
    }

    /// Parses the single-file baseline's archive directory and checks one tensor's bytes, so the
    /// baseline is a real torch.save file.
    func verifySingleFile(_ path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        let bytes = [UInt8](data)
        let file = try TorchSaveFile(parsing: bytes)
        guard case .dict(let entries) = file.value else {
            throw BenchRunError.scenarioFailed(scenario: "single-file save", underlying: "root is not a dict")
        }
        guard let first = workload.tensors.first,
            let entry = entries.first(where: { $0.key == .string(first.fqn) }),
            case .tensor(let reference) = entry.value,
            let storage = file.storage(reference.storageKey)
        else {
            throw BenchRunError.scenarioFailed(scenario: "single-file save", underlying: "first tensor missing")
        }
        let range = storage.byteRange
        try bytes.withUnsafeBytes { raw in
            let slice = UnsafeRawBufferPointer(rebasing: raw[range])
            let whole = BenchChunk(
                fqn: first.fqn, dtype: first.dtype, globalShape: first.shape, offsets: first.shape.map { _ in 0 },
                sizes: first.shape)
            if let mismatch = try content.verify(whole, buffer: slice) {
                throw BenchRunError.verificationFailed(rank: 0, mismatch: mismatch)
            }
        }
    }

    // MARK: Async save

    func asyncSave(states: [RankState]) async throws -> (ScenarioResult, [String]) {
        let ranks = states.count
        let name = "async save \(ranks)r"
        let directory = work + "/async-\(ranks)r"
        let group = InProcessGroup(worldSize: ranks)
        let engines = self.engines, ckptOptions = self.checkpointOptions
        let checkpointers = (0..<ranks).map { rank in
            Checkpointer(engine: engines[rank], communicator: group.communicator(rank: rank), options: ckptOptions)
        }
        // The reference for the caller's blocked time: each rank copies its shard into
        // preallocated (resident) memory, under the same memory sampler as the saves (its 1 ms
        // wake-ups cost a 2-core machine a measurable share of a copy that takes tens of
        // milliseconds), right before each repeat, so both see the same machine. The
        // destinations exist before the baseline below: they are not the async save's memory.
        let destinations = states.map { TensorBuffer(byteCount: $0.arena.count) }
        var copies: [Double] = []
        func copyReference() async throws {
            let start = ContinuousClock.now
            _ = try await measured { try await onRanks(ranks, group: nil) { rank in
                let source = states[rank]
                guard let to = destinations[rank].bytes.baseAddress, let from = source.arena.bytes.baseAddress else {
                    return 0
                }
                for placement in source.placements {
                    memcpy(to + placement.offset, from + placement.offset, placement.chunk.byteCount)
                }
                return 1
            } }
            copies.append(runSeconds(ContinuousClock.now - start))
        }
        // One untimed copy first: every destination page resident, as a trainer's would be.
        try await copyReference()
        copies.removeAll()
        // The staging arena is memory the async save holds: extra memory counts from before it exists.
        let before = MemorySampler.currentRSS() ?? 0
        // Staging memory reserved up front, as a trainer does at start-up (reported apart).
        let reserveStart = ContinuousClock.now
        _ = try await onRanks(ranks, group: nil) { rank in checkpointers[rank].reserveAsyncStaging(for: states[rank].state) }
        let reserveSeconds = runSeconds(ContinuousClock.now - reserveStart)
        // First save (reported apart).
        repeatProgress(name + " (first)", 0)
        let firstStart = ContinuousClock.now
        let firstHandles = try await onRanks(ranks, group: group) { rank in
            try await checkpointers[rank].saveAsync(states[rank].state, to: directory)
        }
        let firstBlocked = runSeconds(ContinuousClock.now - firstStart)
        _ = try await onRanks(ranks, group: group) { rank in try await firstHandles[rank].wait() }

        var samples = Samples()
        var blocked: [Double] = []
        var commits: [Double] = []
        var staged = 0
        var raw: [Double] = []
        for index in 0..<options.repeats {
            repeatProgress(name, index)
            try? FileManager.default.removeItem(atPath: directory)
            if let seconds = try await adjacentProbe(.save) { raw.append(seconds) }
            settle()
            try await copyReference()
            let (times, seconds, memory) = try await measured { () -> (Double, Double) in
                let start = ContinuousClock.now
                let handles = try await onRanks(ranks, group: group) { rank in
                    try await checkpointers[rank].saveAsync(states[rank].state, to: directory)
                }
                let returned = ContinuousClock.now
                staged = handles.reduce(0) { $0 + $1.stagedBytes }
                _ = try await onRanks(ranks, group: group) { rank in try await handles[rank].wait() }
                return (runSeconds(returned - start), runSeconds(ContinuousClock.now - start))
            }
            _ = seconds
            var held = memory
            held.peakExtraRSS = max(memory.peakExtraRSS, memory.peakRSS - before)
            samples.add(seconds: times.1, memory: held)
            blocked.append(times.0)
            commits.append(times.1)
        }
        try? FileManager.default.removeItem(atPath: directory)

        let blockedStats = RepeatStatistics(blocked)
        let copyStats = RepeatStatistics(copies)
        let ratio = copyStats.median > 0 ? blockedStats.median / copyStats.median : 0
        // A plain copy that varies this much means the machine was busy (on a shared 2-core VM,
        // background kernel work after gigabytes of allocations): the ratio is then shaky.
        var unstable: [String] = []
        if copyStats.min > 0, copyStats.max / copyStats.min > 1.5 {
            unstable.append(String(
                format: "memcpy reference unstable (%.3f..%.3f s): the machine was busy, rerun for a firm ratio",
                copyStats.min, copyStats.max))
        }
        let result = ScenarioResult(
            name: name, group: "async", direction: .save, bytesMoved: stateBytes, seconds: samples.seconds,
            peakRSSBytes: samples.peakRSS, peakExtraBytes: samples.peakExtra, engineBufferPeakBytes: samples.gaugePeak,
            callerBlockedSeconds: blocked, commitSeconds: commits,
            phases: [ScenarioPhase(name: "memcpy", seconds: copies)], ranks: ranks,
            notes: [String(format: "blocked %.2fx memcpy", ratio),
                "staging reserved up front in \(ByteFormat.seconds(reserveSeconds)) (reserveAsyncStaging); first save blocked \(ByteFormat.seconds(firstBlocked))",
                "arena \(ByteFormat.binary(staged)) kept (counted as extra)"] + unstable)
            .withAdjacentRaw(seconds: raw, bytes: probeBytes)
        return (result, [])
    }
}

/// Seconds of a duration (named apart from `seconds(_:)` to avoid shadowing by locals).
func runSeconds(_ duration: Duration) -> Double { seconds(duration) }
