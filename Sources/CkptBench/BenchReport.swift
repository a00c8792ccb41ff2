/// Everything one `ckpt-bench` run measured, with where and how.
public struct BenchReport: Sendable, Hashable, Codable {
    /// Version of this record's layout; bumped on incompatible changes.
    public static let currentFormatVersion = 1

    /// Layout version of the record.
    public var formatVersion: Int
    /// Command, date, build.
    public var provenance: RunProvenance
    /// The machine and the storage behind the benchmark directory.
    public var machine: MachineDescription
    /// The options the run used.
    public var options: BenchOptions
    /// The workload.
    public var workload: WorkloadSummary
    /// Raw-device bandwidth measured in the same run.
    public var rawDevice: RawDeviceReference?
    /// The scenarios, in the order run.
    public var scenarios: [ScenarioResult]
    /// Sharded save/load throughput per rank count (when more than one rank count was run).
    public var rankSweep: [RankSweepPoint]
    /// The project's targets checked against this run.
    public var targets: [TargetCheck]
    /// Remarks for the summary (e.g. warnings about the environment).
    public var notes: [String]
    /// Throughput unit, spelled out for readers of the JSON.
    public var throughputUnit: String

    /// Creates a report; fills every scenario's ``ScenarioResult/rawDeviceRatio`` from `rawDevice`.
    public init(
        provenance: RunProvenance,
        machine: MachineDescription,
        options: BenchOptions,
        workload: WorkloadSummary,
        rawDevice: RawDeviceReference?,
        scenarios: [ScenarioResult],
        rankSweep: [RankSweepPoint] = [],
        targets: [TargetCheck] = [],
        notes: [String] = []
    ) {
        self.formatVersion = Self.currentFormatVersion
        self.provenance = provenance
        self.machine = machine
        self.options = options
        self.workload = workload
        self.rawDevice = rawDevice
        self.scenarios = scenarios.map { Self.withRatio($0, rawDevice) }
        self.rankSweep = rankSweep.map { point in
            RankSweepPoint(
                ranks: point.ranks, save: point.save.map { Self.withRatio($0, rawDevice) },
                load: point.load.map { Self.withRatio($0, rawDevice) })
        }
        self.targets = targets
        self.notes = notes
        self.throughputUnit = "GB/s, decimal (1 GB = 1e9 bytes), bytes moved over the median repeat time"
    }

    private static func withRatio(_ scenario: ScenarioResult, _ reference: RawDeviceReference?) -> ScenarioResult {
        var result = scenario
        if let raw = scenario.adjacentRawGBps ?? reference?.gigabytesPerSecond(for: scenario.direction), raw > 0 {
            result.rawDeviceRatio = scenario.throughputGBps / raw
        } else {
            result.rawDeviceRatio = nil
        }
        return result
    }
}
