import CkptTestSupport
import Foundation

@testable import CkptBench


/// A seed for property tests: fixed unless `CKPT_TEST_SEED` is set.
func testSeed() -> UInt64 {
    if let text = ProcessInfo.processInfo.environment["CKPT_TEST_SEED"], let value = UInt64(text) {
        return value
    }
    return 0xC0FF_EE12_3456_789A
}

enum Sample {
    static let gib = 1 << 30

    static func report(sweep: Bool = true, raw: Bool = true) -> BenchReport {
        let workload = BenchWorkload(shape: BenchModelShape(modelDim: 704, layers: 10, vocab: 24336))
        let state = workload.totalBytes
        let scenarios = [
            ScenarioResult(
                name: "save sharded 4r", group: "sharded", direction: .save, bytesMoved: state,
                seconds: [0.95, 0.9, 1.1], peakRSSBytes: state + 300 << 20, peakExtraBytes: 40 << 20,
                engineBufferPeakBytes: 32 << 20, ranks: 4),
            ScenarioResult(
                name: "save single-file (gather)", group: "single-file", direction: .save, bytesMoved: state,
                seconds: [9.0, 10.0], peakRSSBytes: 2 * state + 300 << 20, peakExtraBytes: state + (20 << 20),
                phases: [ScenarioPhase(name: "gather", seconds: [3, 3.2]), ScenarioPhase(name: "write", seconds: [6, 6.8])],
                ranks: 4, notes: ["torch.save layout"]),
            ScenarioResult(
                name: "save async 4r", group: "async", direction: .save, bytesMoved: state, seconds: [1.2, 1.3, 1.25],
                peakRSSBytes: state + 400 << 20, peakExtraBytes: 150 << 20, callerBlockedSeconds: [0.1, 0.12, 0.11],
                commitSeconds: [1.2, 1.3, 1.25], ranks: 4),
            ScenarioResult(
                name: "load 4->4", group: "sharded", direction: .load, bytesMoved: state, seconds: [1.3, 1.25, 1.4],
                peakRSSBytes: state + 280 << 20, peakExtraBytes: 30 << 20, bytesRead: state, bytesNeeded: state,
                ranks: 4, loadRanks: 4),
            ScenarioResult(
                name: "load 4->3 (resharded)", group: "resharded", direction: .load, bytesMoved: state,
                seconds: [1.6, 1.5, 1.55], peakRSSBytes: state + 290 << 20, peakExtraBytes: 35 << 20,
                bytesRead: state * 3 / 2, bytesNeeded: state, ranks: 4, loadRanks: 3),
            ScenarioResult(
                name: "consolidate torch.save", group: "consolidation", direction: .copy, bytesMoved: state,
                seconds: [2.2, 2.0, 2.1], peakRSSBytes: state + 100 << 20, peakExtraBytes: 32 << 20),
        ]
        let rawDevice = raw
            ? RawDeviceReference(
                method: "io_uring O_DIRECT, 4 MiB blocks, qd 16", bytes: state, writeSeconds: [0.7, 0.72, 0.69],
                readSeconds: [1.05, 1.1, 1.0], copySeconds: [1.9, 2.0, 1.95])
            : nil
        let points = sweep
            ? [1, 2, 4, 8].map { ranks in
                RankSweepPoint(
                    ranks: ranks,
                    save: ScenarioResult(
                        name: "save \(ranks)r", group: "sweep", direction: .save, bytesMoved: state,
                        seconds: [2.0 / Double(ranks).squareRoot()], ranks: ranks),
                    load: ScenarioResult(
                        name: "load \(ranks)r", group: "sweep", direction: .load, bytesMoved: state,
                        seconds: [1.8 / Double(ranks).squareRoot()], ranks: ranks, loadRanks: ranks))
            }
            : []
        let provenance = RunProvenance(
            arguments: ["ckpt-bench", "--ranks", "1,2,4,8", "--out", "my results"], date: "2026-11-25T15:00:00Z",
            buildConfiguration: "release", gitCommit: String(repeating: "ab", count: 20))
        let machine = MachineDescription(
            cpuModel: "AMD EPYC", logicalCores: 2, memoryTotalBytes: 24 * gib, memoryAvailableBytes: 20 * gib,
            kernelRelease: "6.1.0", system: "Linux", architecture: "x86_64",
            storage: StorageDescription(
                path: "/var/tmp", fileSystemType: "ext4", mountPoint: "/", mountSource: "/dev/vda", blockDevice: "vda",
                deviceModel: nil, rotational: false, freeBytes: 80 * gib, totalBytes: 100 * gib))
        return BenchReport(
            provenance: provenance, machine: machine, options: BenchOptions(ranks: [1, 2, 4, 8]),
            workload: WorkloadSummary(workload), rawDevice: rawDevice, scenarios: scenarios, rankSweep: points,
            notes: ["sample report for tests"])
    }
}
