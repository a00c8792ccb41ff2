#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The settings of a `ckpt-bench` run. The executable maps its command-line flags onto this;
/// parsing helpers and validation live here so they are testable without a process.
public struct BenchOptions: Sendable, Hashable, Codable {
    /// Which I/O backend the engine uses.
    public enum Engine: String, Sendable, Hashable, Codable, CaseIterable {
        /// io_uring.
        case uring
        /// Plain POSIX `pread`/`pwrite`.
        case posix
        /// io_uring when available, else POSIX.
        case auto
    }

    /// Whether file I/O bypasses the page cache.
    public enum IOMode: String, Sendable, Hashable, Codable, CaseIterable {
        /// `O_DIRECT`.
        case direct
        /// Through the page cache (loads drop it with `posix_fadvise(DONTNEED)` first).
        case buffered
    }

    /// Largest rank count accepted.
    public static let maximumRanks = 1024

    /// Save rank counts; more than one runs a sweep (`--ranks 1,2,4,8`).
    public var ranks: [Int]
    /// Load rank counts; nil means ``defaultLoadRanks(saveRanks:)``.
    public var loadRanks: [Int]?
    /// Tensor bytes of the workload (`--size`).
    public var sizeBytes: Int
    /// Repeats per scenario (`--repeat`); the median is reported.
    public var repeats: Int
    /// I/O backend (`--engine`).
    public var engine: Engine
    /// Direct or buffered I/O.
    public var ioMode: IOMode
    /// Where checkpoints are written (`--dir`); must exist and be writable.
    public var directory: String
    /// Keep the checkpoints after the run (`--keep`).
    public var keep: Bool
    /// Print the JSON record to stdout instead of the table (`--json`).
    public var json: Bool
    /// Where results are written (`--out`).
    public var outputDirectory: String
    /// Show progress on stderr when it is a terminal (`--no-progress` clears it).
    public var progress: Bool
    /// Label of the results directory (`<timestamp>-<label>`).
    public var label: String
    /// Precision mix of the workload.
    public var stateMix: BenchStateMix
    /// Content seed.
    public var seed: UInt64
    /// Check every loaded byte (`--verify full`) instead of three rows per chunk.
    public var fullVerify: Bool
    /// Run the raw-device probe (the reference every ratio uses).
    public var rawProbe: Bool
    /// Scenario groups to run besides the sharded save and its same-size load (`--only`); nil
    /// runs all of ``scenarioGroups``.
    public var only: Set<String>?
    /// Compute the zip CRC-32 of every record at save (`CheckpointOptions.zipCRC32`; `--no-zip-crc` clears it).
    public var zipCRC32: Bool
    /// Write the XXH3 checksum sidecar at save (`CheckpointOptions.writeChecksums`; `--no-checksums` clears it).
    public var writeChecksums: Bool

    /// The optional scenario groups: `reshard`, `consolidate`, `single-file`, `async`.
    public static let scenarioGroups = ["reshard", "consolidate", "single-file", "async"]

    /// Whether the optional scenario group `group` runs.
    public func runs(_ group: String) -> Bool { only?.contains(group) ?? true }

    /// The defaults: 4 ranks, 1 GiB, 3 repeats, auto engine, direct I/O, `/var/tmp` (disk-backed by
    /// convention, unlike `/tmp` on some systems), results in `results/`.
    public init(
        ranks: [Int] = [4],
        loadRanks: [Int]? = nil,
        sizeBytes: Int = BenchWorkload.defaultSizeBytes,
        repeats: Int = 3,
        engine: Engine = .auto,
        ioMode: IOMode = .direct,
        directory: String = "/var/tmp",
        keep: Bool = false,
        json: Bool = false,
        outputDirectory: String = "results",
        progress: Bool = true,
        label: String = "bench",
        stateMix: BenchStateMix = .mixedPrecisionAdam,
        seed: UInt64 = BenchContent.defaultSeed,
        fullVerify: Bool = false,
        rawProbe: Bool = true,
        only: Set<String>? = nil,
        zipCRC32: Bool = true,
        writeChecksums: Bool = true
    ) {
        self.ranks = ranks
        self.loadRanks = loadRanks
        self.sizeBytes = sizeBytes
        self.repeats = repeats
        self.engine = engine
        self.ioMode = ioMode
        self.directory = directory
        self.keep = keep
        self.json = json
        self.outputDirectory = outputDirectory
        self.progress = progress
        self.label = label
        self.stateMix = stateMix
        self.seed = seed
        self.fullVerify = fullVerify
        self.rawProbe = rawProbe
        self.only = only
        self.zipCRC32 = zipCRC32
        self.writeChecksums = writeChecksums
    }

    /// Default load rank counts for a checkpoint saved by `saveRanks`: the same count, then 1, 2,
    /// 3 and `2 * saveRanks` (duplicates removed, order kept).
    public static func defaultLoadRanks(saveRanks: Int) -> [Int] {
        var seen = Set<Int>()
        return [saveRanks, 1, 2, 3, 2 * saveRanks].filter { $0 >= 1 && seen.insert($0).inserted }
    }

    /// The load rank counts to run for a checkpoint saved by `saveRanks`.
    public func effectiveLoadRanks(saveRanks: Int) -> [Int] {
        loadRanks ?? Self.defaultLoadRanks(saveRanks: saveRanks)
    }

    // MARK: Parsing

    /// Parses a size with an optional binary unit: `1G`, `256M`, `4GiB`, `1.5g`, `512k`, `1048576`.
    /// `K`, `M`, `G`, `T` (with or without `i` and `B`, any case) are powers of 1024.
    public static func parseSize(_ text: String) throws(BenchOptionsError) -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .invalidSize(text: text, reason: "empty") }
        let numberEnd = trimmed.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? trimmed.endIndex
        let number = String(trimmed[..<numberEnd])
        let unit = trimmed[numberEnd...].trimmingCharacters(in: .whitespaces).lowercased()
        guard !number.isEmpty else {
            throw .invalidSize(text: text, reason: "expected a number first")
        }
        let shifts: [String: Int] = [
            "": 0, "b": 0,
            "k": 10, "kb": 10, "kib": 10,
            "m": 20, "mb": 20, "mib": 20,
            "g": 30, "gb": 30, "gib": 30,
            "t": 40, "tb": 40, "tib": 40,
        ]
        guard let shift = shifts[unit] else {
            throw .invalidSize(text: text, reason: "unknown unit '\(unit)'")
        }
        let limit = 1 << 50
        let bytes: Int
        if number.contains(".") {
            let parts = number.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, let value = Double(number) else {
                throw .invalidSize(text: text, reason: "malformed number '\(number)'")
            }
            let scaled = value * Double(1 << shift)
            guard scaled <= Double(limit) else { throw .invalidSize(text: text, reason: "larger than 1 PiB") }
            guard scaled == scaled.rounded(.down) else {
                throw .invalidSize(text: text, reason: "not a whole number of bytes")
            }
            bytes = Int(scaled)
        } else {
            guard let value = Int(number) else { throw .invalidSize(text: text, reason: "larger than 1 PiB") }
            let (scaled, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
            guard !overflow, scaled <= limit else { throw .invalidSize(text: text, reason: "larger than 1 PiB") }
            bytes = scaled
        }
        guard bytes > 0 else { throw .invalidSize(text: text, reason: "must be positive") }
        return bytes
    }

    /// Parses a comma-separated list of rank counts, each a number or an inclusive range `a-b`:
    /// `4`, `1,2,4,8`, `1-4`. Rejects empty items, zero, counts above ``maximumRanks`` and duplicates.
    public static func parseRankList(_ text: String) throws(BenchOptionsError) -> [Int] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .invalidRankList(text: text, reason: "empty") }
        var result: [Int] = []
        var seen = Set<Int>()
        for rawItem in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let item = rawItem.trimmingCharacters(in: .whitespaces)
            guard !item.isEmpty else { throw .invalidRankList(text: text, reason: "empty item") }
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count <= 2 else { throw .invalidRankList(text: text, reason: "malformed range '\(item)'") }
            var values: [Int] = []
            for bound in bounds {
                let digits = bound.trimmingCharacters(in: .whitespaces)
                guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(digits) else {
                    throw .invalidRankList(text: text, reason: "'\(item)' is not a whole number or range")
                }
                guard value >= 1 else { throw .invalidRankList(text: text, reason: "rank counts start at 1") }
                guard value <= maximumRanks else {
                    throw .invalidRankList(text: text, reason: "\(value) exceeds the maximum of \(maximumRanks)")
                }
                values.append(value)
            }
            let lower = values[0]
            let upper = values.count == 2 ? values[1] : lower
            guard lower <= upper else {
                throw .invalidRankList(text: text, reason: "range '\(item)' runs backwards")
            }
            for value in lower...upper {
                guard seen.insert(value).inserted else {
                    throw .invalidRankList(text: text, reason: "\(value) appears twice")
                }
                result.append(value)
            }
        }
        return result
    }

    // MARK: Validation

    /// What the run writes to ``directory``, item by item, assuming every checkpoint coexists
    /// (the safe bound whether or not ``keep`` is set).
    public func plannedDisk(stateBytes: Int) -> [(item: String, bytes: Int)] {
        let metadataSlack = max(stateBytes / 100, 1 << 20)
        return [
            ("sharded checkpoint", stateBytes + metadataSlack),
            ("single-file baseline", stateBytes + metadataSlack),
            ("consolidated copy", stateBytes + metadataSlack),
            ("raw-device probe file", stateBytes),
        ]
    }

    /// Memory the run needs besides the process itself: the in-memory state of all ranks, a full
    /// copy gathered to rank 0 by the single-file baseline, and 256 MiB of slack.
    public func plannedMemory(stateBytes: Int) -> [(item: String, bytes: Int)] {
        [("training state", stateBytes), ("baseline gather", stateBytes), ("slack", 256 << 20)]
    }

    /// Checks the values and the resources given (pure: pass nil for a resource that is unknown).
    public func validate(
        stateBytes: Int, freeDiskBytes: Int?, memoryAvailableBytes: Int?
    ) throws(BenchOptionsError) {
        guard !ranks.isEmpty else { throw .invalidRankList(text: "", reason: "empty") }
        if let loadRanks, loadRanks.isEmpty {
            throw .invalidRankList(text: "", reason: "empty load rank list")
        }
        for list in [ranks, loadRanks ?? []] {
            for value in list where value < 1 || value > Self.maximumRanks {
                throw .invalidRankList(
                    text: list.map(String.init).joined(separator: ","),
                    reason: "rank counts must be between 1 and \(Self.maximumRanks)")
            }
        }
        guard repeats >= 1, repeats <= 1000 else {
            throw .invalidValue(option: "--repeat", value: String(repeats), reason: "must be between 1 and 1000")
        }
        guard sizeBytes > 0 else {
            throw .invalidValue(option: "--size", value: String(sizeBytes), reason: "must be positive")
        }
        guard !label.isEmpty, !label.contains("/") else {
            throw .invalidValue(option: "--label", value: label, reason: "must be a non-empty file name")
        }
        if let free = freeDiskBytes {
            let plan = plannedDisk(stateBytes: stateBytes)
            let needed = plan.reduce(0) { $0 + $1.bytes }
            if needed > free {
                throw .insufficientDisk(
                    path: directory, needed: needed, free: free, breakdown: Self.describe(plan))
            }
        }
        if let available = memoryAvailableBytes {
            let plan = plannedMemory(stateBytes: stateBytes)
            let needed = plan.reduce(0) { $0 + $1.bytes }
            if needed > available {
                throw .insufficientMemory(needed: needed, available: available, breakdown: Self.describe(plan))
            }
        }
    }

    /// Checks that ``directory`` exists and is writable, then ``validate(stateBytes:freeDiskBytes:memoryAvailableBytes:)``
    /// against its free space (`statvfs`) and `MemAvailable` from `/proc/meminfo`.
    public func validateEnvironment(stateBytes: Int) throws(BenchOptionsError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw .directoryMissing(path: directory)
        }
        guard isDirectory.boolValue else { throw .notADirectory(path: directory) }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw .directoryNotWritable(path: directory, errno: errno)
        }
        try validate(
            stateBytes: stateBytes,
            freeDiskBytes: SystemProbe.freeSpace(directory)?.free,
            memoryAvailableBytes: SystemProbe.memAvailable())
    }

    private static func describe(_ plan: [(item: String, bytes: Int)]) -> String {
        plan.map { "\($0.item) \(ByteFormat.binary($0.bytes))" }.joined(separator: " + ")
    }
}
