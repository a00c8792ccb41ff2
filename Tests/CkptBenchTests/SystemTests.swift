import Foundation
import Synchronization
import Testing

@testable import CkptBench

@Suite(.serialized) struct SystemTests {
    @Test func samplerSeesAnAllocationSpike() throws {
        let gaugeValue = Atomic<Int>(0)
        let sampler = MemorySampler(interval: .milliseconds(1), gauge: { gaugeValue.load(ordering: .relaxed) })
        try sampler.start()
        #expect(sampler.isRunning)
        #expect(throws: MemorySamplerError.alreadyRunning) { try sampler.start() }
        let size = 64 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
        // Touch every page so it becomes resident.
        var offset = 0
        while offset < size {
            buffer.storeBytes(of: UInt8(truncatingIfNeeded: offset >> 12), toByteOffset: offset, as: UInt8.self)
            offset += 4096
        }
        gaugeValue.store(size, ordering: .relaxed)
        usleep(30_000)
        gaugeValue.store(0, ordering: .relaxed)
        let report = sampler.stop()
        buffer.deallocate()
        #expect(!sampler.isRunning)
        #expect(report.peakExtraRSS >= 48 << 20, "\(report)")
        #expect(report.peakRSS >= report.baselineRSS + report.peakExtraRSS)
        #expect(report.gaugePeak == size)
        #expect(report.samples >= 2)
        #expect(report.maxRSSLifetime >= report.peakRSS / 2)
        // Restartable, and stop without start is harmless.
        try sampler.start()
        let again = sampler.stop()
        #expect(again.samples >= 1)
        #expect(again.gaugePeak == 0)
        #expect(sampler.stop().samples == 0)
        #expect((MemorySampler.currentRSS() ?? 0) > 0)
    }

    @Test func measureWrapsSyncAndAsyncBodies() async throws {
        let sampler = MemorySampler(interval: .milliseconds(1))
        let (value, report) = try await sampler.measure { () async throws -> Int in
            try await Task.sleep(for: .milliseconds(5))
            return 42
        }
        #expect(value == 42)
        #expect(report.samples >= 1)
        #expect(!sampler.isRunning)
        struct Boom: Error {}
        #expect(throws: Boom.self) { _ = try sampler.measure { () throws -> Int in throw Boom() } }
        #expect(!sampler.isRunning)
    }

    @Test func machineAndStorageProbe() {
        let machine = MachineDescription.current(directory: NSTemporaryDirectory())
        #expect(machine.logicalCores >= 1)
        #expect((machine.memoryTotalBytes ?? 0) > 0)
        #expect(machine.kernelRelease?.isEmpty == false)
        let storage = machine.storage
        #expect(storage?.fileSystemType != nil)
        #expect(storage?.mountPoint != nil)
        #expect((storage?.freeBytes ?? 0) > 0)
        #expect(!machine.summary.isEmpty)
    }

    @Test func mountTableParsing() {
        let table = """
            /dev/vda / ext4 rw 0 0
            tmpfs /dev/shm tmpfs rw 0 0
            /dev/sdb1 /mnt/my\\040disk xfs rw 0 0
            tmpfs /dev/shm tmpfs rw,size=1k 0 0
            """
        #expect(SystemProbe.parseMounts(table, containing: "/home/x")?.type == "ext4")
        #expect(SystemProbe.parseMounts(table, containing: "/dev/shm/a")?.type == "tmpfs")
        #expect(SystemProbe.parseMounts(table, containing: "/dev/shmoo")?.type == "ext4")
        let disk = SystemProbe.parseMounts(table, containing: "/mnt/my disk/data")
        #expect(disk?.point == "/mnt/my disk")
        #expect(disk?.source == "/dev/sdb1")
        #expect(SystemProbe.parseMeminfo("MemTotal:  1024 kB\nMemAvailable: 10 kB\nHugePages_Total: 0\n")
            == ["MemTotal": 1 << 20, "MemAvailable": 10240, "HugePages_Total": 0])
    }

    @Test func provenance() {
        let provenance = RunProvenance.current(now: Date(timeIntervalSince1970: 0))
        #expect(provenance.date == "1970-01-01T00:00:00Z")
        #if DEBUG
        #expect(provenance.buildConfiguration == "debug")
        #endif
        #expect(RunProvenance(arguments: ["a", "b c", "it's", ""], date: "", buildConfiguration: "", gitCommit: nil)
            .commandLine == "a 'b c' 'it'\\''s' ''")
        // The worktree is a git checkout; the commit is found through the .git file.
        let commit = GitProbe.headCommit(from: FileManager.default.currentDirectoryPath)
        if let commit { #expect(commit.count == 40) }
    }

    @Test func progressIsThrottledAndOnlyOnTerminals() {
        let lines = Mutex<[String]>([])
        let clock = Atomic<UInt64>(0)
        let reporter = ProgressReporter(
            enabled: true, isTerminal: true, minimumInterval: .milliseconds(100),
            output: { text in lines.withLock { $0.append(text) } }, now: { clock.load(ordering: .relaxed) })
        #expect(reporter.update("saving", fraction: 0.25))
        clock.store(50_000_000, ordering: .relaxed)
        #expect(!reporter.update("saving", fraction: 0.3))
        clock.store(150_000_000, ordering: .relaxed)
        #expect(reporter.update("load", fraction: 1.5))
        reporter.finish()
        let output = lines.withLock { $0 }
        #expect(output.count == 3)
        #expect(output[0] == "\rsaving 25%")
        #expect(output[1] == "\rload 100% ")
        #expect(output[2].hasPrefix("\r") && output[2].hasSuffix("\r"))

        let silent = ProgressReporter(enabled: true, isTerminal: false, output: { _ in Issue.record("drew") })
        #expect(!silent.update("x"))
        let disabled = ProgressReporter(enabled: false, isTerminal: true, output: { _ in Issue.record("drew") })
        #expect(!disabled.update("x"))
        disabled.finish()
    }
}
