import Foundation
import Testing

@testable import CkptBench

/// End-to-end run of every scenario on a tiny workload in a temporary directory, plus the
/// runner's own arithmetic (buckets, targets, verification, workload manifest).
@Suite struct RunnerTests {
    static func temporaryDirectory(_ label: String) throws -> String {
        let path = NSTemporaryDirectory() + "ckpt-bench-test-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func endToEndTinyRunCoversEveryScenarioAndWritesResults() async throws {
        let directory = try Self.temporaryDirectory("run")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let out = directory + "/results"
        let options = BenchOptions(
            ranks: [1, 2], loadRanks: [2, 1, 3], sizeBytes: 1 << 20, repeats: 2, directory: directory,
            outputDirectory: out, progress: false, label: "tiny")
        let report = try await BenchRunner(options: options).run()
        let workload = try BenchWorkload.sized(targetBytes: 1 << 20)

        let names = report.scenarios.map(\.name)
        for expected in [
            "sharded save 1r", "load 1r", "sharded save 2r", "load 2r", "load 2r->1r", "load 2r->3r",
            "consolidate torch.save", "consolidate safetensors", "single-file save 2r", "async save 2r",
        ] {
            #expect(names.contains(expected), "missing scenario \(expected) in \(names)")
        }
        #expect(names.count == 10)
        for scenario in report.scenarios {
            #expect(scenario.bytesMoved == workload.totalBytes)
            #expect(scenario.time.samples.count == 2)
            #expect(scenario.time.min <= scenario.time.median && scenario.time.median <= scenario.time.max)
            #expect(scenario.throughputGBps > 0)
            #expect(scenario.peakRSSBytes ?? 0 > 0)
            if scenario.direction == .load {
                let needed = try #require(scenario.bytesNeeded)
                #expect(needed == workload.totalBytes, "\(scenario.name) needed \(needed)")
                #expect(try #require(scenario.bytesRead) >= needed)
            }
        }
        let single = try #require(report.scenarios.first { $0.group == "single-file" })
        #expect(single.phases.map(\.name) == ["gather", "write"])
        let async = try #require(report.scenarios.first { $0.group == "async" })
        #expect(async.callerBlocked?.samples.count == 2)
        #expect(async.phases.first?.name == "memcpy")
        #expect(report.rankSweep.map(\.ranks) == [1, 2])
        #expect(report.rawDevice?.writeGBps ?? 0 > 0)
        #expect(report.scenarios.allSatisfy { $0.rawDeviceRatio != nil })
        // Every repeat of every scenario has its own probe alongside, and the ratio uses it.
        for scenario in report.scenarios {
            let adjacent = try #require(scenario.adjacentRaw, "\(scenario.name) has no adjacent probe")
            #expect(adjacent.samples.count == 2)
            let raw = try #require(scenario.adjacentRawGBps)
            #expect(abs((scenario.rawDeviceRatio ?? 0) - scenario.throughputGBps / raw) < 1e-9)
        }
        // Every load has the device replaying its reads after each repeat.
        for scenario in report.scenarios where scenario.direction == .load {
            let replay = try #require(scenario.patternRaw, "\(scenario.name) has no read replay")
            #expect(replay.samples.count == 2 && replay.min > 0)
            #expect(abs((scenario.patternRatio ?? 0) - replay.median / scenario.time.median) < 1e-12)
            #expect(scenario.notes.contains { $0.contains("replayed raw") }, "\(scenario.notes)")
        }
        #expect(report.scenarios.filter { $0.direction != .load }.allSatisfy { $0.patternRaw == nil })
        #expect(report.rawDevice?.copyGBps ?? 0 > 0)
        #expect(report.targets.contains { $0.name == "sharded save 2r vs raw write" })
        #expect(report.targets.contains { $0.name.hasPrefix("async save 2r caller blocked") })

        // Nothing left behind in the benchmark directory.
        let left = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(left.isEmpty, "left behind: \(left)")

        // Outputs: files written, JSON round trip, table and summary mention the scenarios.
        let written = try ResultsWriter(outputDirectory: out).write(report, label: "tiny")
        for file in ["result.json", "summary.md", "throughput.svg", "memory.svg", "ranks.svg"] {
            #expect(FileManager.default.fileExists(atPath: written.directory + "/" + file))
        }
        let decoded = try BenchReport.decode(jsonData: try Data(contentsOf: URL(fileURLWithPath: written.directory + "/result.json")))
        #expect(decoded == report)
        let table = ResultsTable.render(report)
        #expect(table.contains("single-file save 2r"))
        #expect(table.contains("targets:"))
        let summary = try String(contentsOfFile: written.directory + "/summary.md", encoding: .utf8)
        #expect(summary.contains("## Targets"))
    }

    @Test func badDirectoryIsRefusedBeforeAnything() async throws {
        let options = BenchOptions(sizeBytes: 1 << 20, directory: "/nonexistent/ckpt-bench-\(getpid())", progress: false)
        await #expect(throws: BenchOptionsError.directoryMissing(path: options.directory)) {
            _ = try await BenchRunner(options: options).run()
        }
    }

    @Test func bucketsCoverEveryTensorOnceInOrder() throws {
        let workload = try BenchWorkload.sized(targetBytes: 8 << 20)
        for limit in [1, 1 << 16, 1 << 20, 1 << 30] {
            let buckets = RunContext.buckets(workload.tensors, bytes: limit)
            #expect(buckets.first?.lowerBound == 0)
            #expect(buckets.last?.upperBound == workload.tensors.count)
            for (a, b) in zip(buckets, buckets.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
            for bucket in buckets.dropLast() {
                let bytes = bucket.reduce(0) { $0 + workload.tensors[$1].byteCount }
                #expect(bytes >= limit)
                // Without its last tensor, a bucket is under the limit.
                let without = bucket.dropLast().reduce(0) { $0 + workload.tensors[$1].byteCount }
                #expect(without < limit)
            }
        }
    }

    @Test func sampledVerificationCatchesAWrongByteInAVerifiedRow() throws {
        let workload = try BenchWorkload.sized(targetBytes: 1 << 20)
        let layout = try workload.shardLayout(ranks: 2)
        let content = BenchContent()
        let state = try RankState.make(
            rank: 1, chunks: layout.chunks(rank: 1), values: [:], valuePlaceholders: true, content: content)
        let checked = try state.verify(content: content, full: false, salt: 7)
        #expect(checked > 0 && checked <= state.tensorBytes)
        #expect(try state.verify(content: content, full: true, salt: 0) == state.tensorBytes)
        // Corrupt the last byte of the first row of the largest chunk, then the last row's first byte.
        let largest = try #require(state.placements.max { $0.chunk.byteCount < $1.chunk.byteCount })
        let rowBytes = largest.chunk.byteCount / largest.chunk.sizes[0]
        for at in [largest.offset + rowBytes - 1, largest.offset + largest.chunk.byteCount - rowBytes] {
            state.arena.bytes[at] ^= 0x5A
            #expect(throws: BenchRunError.self) { try state.verify(content: content, full: false, salt: 7) }
            state.arena.bytes[at] ^= 0x5A
        }
        #expect(try state.verify(content: content, full: false, salt: 7) == checked)
    }

    @Test func targetsCompareWithTheRawDevice() {
        let raw = RawDeviceReference(method: "test", bytes: 1_000_000_000, writeSeconds: [1.0], readSeconds: [2.0])
        let save = ScenarioResult(
            name: "sharded save 4r", group: "sharded", direction: .save, bytesMoved: 1_000_000_000, seconds: [1.25],
            peakExtraBytes: 4 * (65 << 20), ranks: 4)
        let load = ScenarioResult(
            name: "load 4r->2r", group: "resharded", direction: .load, bytesMoved: 1_000_000_000, seconds: [2.2],
            peakExtraBytes: 2 * (10 << 20), ranks: 4, loadRanks: 2)
        let async = ScenarioResult(
            name: "async save 4r", group: "async", direction: .save, bytesMoved: 1, seconds: [1],
            callerBlockedSeconds: [0.11], phases: [ScenarioPhase(name: "memcpy", seconds: [0.1])])
        let fast = ScenarioResult(
            name: "load 4r", group: "sharded", direction: .load, bytesMoved: 1_000_000_000, seconds: [2.0],
            peakExtraBytes: 0, ranks: 4, loadRanks: 4)
        let copy = ScenarioResult(
            name: "consolidate torch.save", group: "consolidation", direction: .copy, bytesMoved: 1_000_000_000,
            seconds: [3.0]).withAdjacentRaw(seconds: [2.9], bytes: 1_000_000_000)
        let workload = BenchWorkload(shape: BenchModelShape(modelDim: 8, layers: 1, vocab: 8))
        let checks = BenchRunner.targets(
            scenarios: [save, load, fast, copy, async], raw: raw, options: BenchOptions(), workload: workload)
        let byName = Dictionary(uniqueKeysWithValues: checks.map { ($0.name, $0) })
        #expect(byName["sharded save 4r vs raw write"]?.measured == "80%")
        #expect(byName["sharded save 4r vs raw write"]?.target == ">= 95%")
        #expect(byName["sharded save 4r vs raw write"]?.met == false)
        #expect(byName["load 4r->2r vs raw read"]?.measured == "91%")
        #expect(byName["load 4r->2r vs raw read"]?.met == false)
        #expect(byName["load 4r vs raw read"]?.measured == "100%")
        #expect(byName["load 4r vs raw read"]?.met == true)
        #expect(byName["consolidate torch.save vs raw copy"]?.measured == "97%")
        #expect(byName["consolidate torch.save vs raw copy"]?.met == true)
        #expect(byName["sharded save 4r extra memory per rank"]?.met == false)
        #expect(byName["load 4r->2r extra memory per rank"]?.measured == "10.0 MiB")
        #expect(byName["async save 4r caller blocked vs memcpy"]?.measured == "1.10x")
        #expect(byName["async save 4r caller blocked vs memcpy"]?.met == true)
        // On tmpfs the probe measures memory, not a device: no raw-device checks.
        let memory = BenchRunner.targets(
            scenarios: [save, load, fast, copy, async], raw: raw, options: BenchOptions(), workload: workload,
            memoryBacked: true)
        #expect(!memory.contains { $0.name.contains("vs raw") })
        #expect(memory.contains { $0.name == "async save 4r caller blocked vs memcpy" })

        // A probe measured alongside the scenario's repeats takes precedence over the run's first.
        let paired = BenchRunner.targets(
            scenarios: [save.withAdjacentRaw(seconds: [1.1, 1.0, 1.2], bytes: 1_000_000_000)], raw: raw,
            options: BenchOptions(), workload: BenchWorkload(shape: BenchModelShape(modelDim: 8, layers: 1, vocab: 8)))
        #expect(paired.first { $0.name == "sharded save 4r vs raw write" }?.measured == "88%")
    }

    @Test func workloadManifestListsEveryTensor() throws {
        let workload = try BenchWorkload.sized(targetBytes: 4 << 20)
        let data = try workload.manifestJSON(ranks: 4)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let tensors = try #require(object["tensors"] as? [[String: Any]])
        #expect(tensors.count == workload.tensors.count)
        var total = 0
        for (entry, tensor) in zip(tensors, workload.tensors) {
            #expect(entry["fqn"] as? String == tensor.fqn)
            #expect(entry["dtype"] as? String == tensor.dtype.rawValue)
            let shape = try #require(entry["shape"] as? [Int])
            #expect(shape == tensor.shape)
            total += shape.reduce(1, *) * (tensor.dtype == .float32 ? 4 : 2)
        }
        #expect(object["totalBytes"] as? Int == total)
        #expect((object["values"] as? [String: Any])?.count == workload.values.count)
        #expect(object["ranks"] as? Int == 4)
    }
}
