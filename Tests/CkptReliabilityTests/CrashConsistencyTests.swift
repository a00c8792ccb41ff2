import Ckpt
import CkptFormat
import CkptIO
import CkptTestSupport
import Foundation
import Glibc
import Testing

/// Saves in a child process (`ckpt-crash-child`) killed with SIGKILL at many points; after each
/// kill the previous checkpoint of the same parent directory loads bit-exactly and the
/// interrupted one either loads bit-exactly or is refused with a clear error, never half.
///
/// Kill points: the child announces phase boundaries on stdout (it wraps the communicator: the
/// save is a fixed sequence of collectives) and can hold at one of them; points inside a phase
/// (data files being written, sidecar / `.metadata.tmp` present, `.metadata` renamed but the
/// directory not yet fsynced) are found by polling the directory and killing as soon as the file
/// shows up; random delays cover the rest. `CKPT_CRASH_TRIALS` sets the number of trials (CI:
/// 18, `scripts/crash-soak`: hundreds).
@Suite(.serialized) struct CrashConsistencyTests {
    static let rows = 2048

    enum KillPoint: String, CaseIterable {
        case random, planned, partialRanks, writesInFlight, dataFsynced, sidecarAppears, metadataTmpAppears,
            metadataAppears, committed
    }

    /// What the directory held when the child died.
    static func observedState(_ dir: String) -> String {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return "no-directory" }
        if names.contains(".metadata") { return "metadata-committed" }
        if names.contains(".metadata.tmp") { return "metadata-tmp" }
        if names.contains(Checkpointer.checksumFileName) { return "sidecar-only" }
        if names.contains(where: { $0.hasSuffix(".distcp") }) { return "data-files" }
        return "empty-directory"
    }

    static var child: String? { builtExecutable("ckpt-crash-child") }

    /// `CKPT_CRASH_ON_DISK=1` (scripts/crash-soak): checkpoints in the temporary directory (a real
    /// file system, where fsync takes time and the `.metadata.tmp` window is wide) instead of tmpfs.
    static var onDisk: Bool { ProcessInfo.processInfo.environment["CKPT_CRASH_ON_DISK"] == "1" }

    @Test func recipeMatchesTheChild() async throws {
        let child = try #require(Self.child, "ckpt-crash-child not built next to the tests")
        let lines = try await onThread { () -> [String] in
            let p = try ChildProcess(child, ["expect", "--seed", "77", "--rows", "\(Self.rows)"])
            _ = p.waitForExit(timeout: 30)
            return p.lines
        }
        let mine = CrashRecipe.tensors(seed: 77, rows: Self.rows).map {
            "TENSOR \($0.fqn) \(String(CrashRecipe.fingerprint($0.bytes), radix: 16))"
        }
        #expect(lines == mine)
    }

    struct Trial: Sendable {
        var index: Int
        var seed: UInt64
        var ranks: Int
        var point: KillPoint
        var backend: String
        var direct: Bool
        var delayMicroseconds: Int
    }

    /// Runs the child for one trial and kills it at the trial's point; returns the state observed.
    static func runChild(_ trial: Trial, directory: String, child: String) throws -> (state: String, exitedCleanly: Bool, lines: [String]) {
        var args = [
            "save", "--dir", directory, "--seed", "\(trial.seed)", "--ranks", "\(trial.ranks)", "--rows", "\(rows)",
            "--backend", trial.backend, "--direct", trial.direct ? "1" : "0",
        ]
        switch trial.point {
        case .planned: args += ["--hold", "planned"]
        case .dataFsynced: args += ["--hold", "data-fsynced"]
        case .committed: args += ["--hold", "committed"]
        case .partialRanks: args += ["--hold-rank", "\(trial.ranks - 1)"]
        default: break
        }
        let p = try ChildProcess(child, args)
        let names = (0..<trial.ranks).map { directory + "/__\($0)_0.distcp" }
        func dirHas(_ name: String) -> Bool { fileExists(directory + "/" + name) }
        switch trial.point {
        case .random:
            usleep(UInt32(trial.delayMicroseconds))
            p.killNow()
        case .planned:
            _ = p.waitForLine(timeout: 30) { $0 == "PHASE planned" }
            p.killNow()
        case .dataFsynced:
            _ = p.waitForLine(timeout: 30) { $0 == "PHASE data-fsynced" }
            p.killNow()
        case .committed:
            _ = p.waitForLine(timeout: 30) { $0 == "PHASE committed" }
            p.killNow()
        case .partialRanks:
            // The last rank holds after planning; kill once rank 0's files are fsynced.
            _ = p.waitForLine(timeout: 30) { $0 == "PHASE written 0" }
            p.killNow()
        case .writesInFlight:
            // Kill as soon as any data file has bytes (and no rank reported its files done).
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, !p.hasExited {
                if p.poll().contains(where: { $0.hasPrefix("PHASE written") }) { break }
                if names.contains(where: { ((try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0) > 0 }) { break }
            }
            p.killNow()
        case .sidecarAppears, .metadataTmpAppears, .metadataAppears:
            let name = trial.point == .sidecarAppears ? Checkpointer.checksumFileName
                : trial.point == .metadataTmpAppears ? ".metadata.tmp" : ".metadata"
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, !p.hasExited, !dirHas(name) {}
            p.killNow()
        }
        let clean = p.lines.contains("DONE")
        return (observedState(directory), clean, p.lines)
    }

    @Test func killedSavesNeverLeaveAHalfLoadableCheckpoint() async throws {
        let child = try #require(Self.child, "ckpt-crash-child not built next to the tests")
        let trials = Int(ProcessInfo.processInfo.environment["CKPT_CRASH_TRIALS"] ?? "") ?? 18
        let baseSeed = UInt64(ProcessInfo.processInfo.environment["CKPT_CRASH_SEED"] ?? "") ?? 20_261_125
        var rng = SplitMix64(seed: baseSeed)
        let engine = try makeEngine(bufferSize: 256 << 10, bufferCount: 32)
        defer { Task { await engine.shutdown() } }
        // Calibrate the random delays on one uninterrupted save.
        let calibration = ScratchDir("ckpt-crash", fast: !Self.onDisk)
        defer { calibration.cleanup() }
        let start = Date()
        _ = try await onThread {
            let p = try ChildProcess(child, ["save", "--dir", calibration.path + "/s", "--seed", "1", "--ranks", "4", "--rows", "\(Self.rows)"])
            return p.waitForExit(timeout: 60)
        }
        let fullMicroseconds = max(20_000, Int(Date().timeIntervalSince(start) * 1e6))

        var histogram: [String: Int] = [:]
        var byPoint: [String: Int] = [:]
        for index in 0..<trials {
            let point = KillPoint.allCases[index % KillPoint.allCases.count]
            let trial = Trial(
                index: index, seed: rng.next() % 1_000_000, ranks: Int.random(in: 1...8, using: &rng),
                point: point, backend: Bool.random(using: &rng) ? "posix" : "uring",
                direct: Bool.random(using: &rng), delayMicroseconds: Int.random(in: 0...(fullMicroseconds * 12 / 10), using: &rng))
            var adjusted = trial
            if adjusted.point == .partialRanks, adjusted.ranks < 2 { adjusted.ranks = 2 }
            let t = adjusted
            let context = "trial \(t.index) (seed \(baseSeed), kill \(t.point), \(t.ranks) ranks, \(t.backend), direct \(t.direct))"
            let parent = ScratchDir("ckpt-crash", fast: !Self.onDisk)
            defer { parent.cleanup() }
            let previous = parent.path + "/step-1", current = parent.path + "/step-2"
            let previousSeed = t.seed &+ 1_000_003
            try await saveRecipe(previous, seed: previousSeed, rows: Self.rows, ranks: Int.random(in: 1...4, using: &rng), engine: engine)

            let run = try await onThread { try Self.runChild(t, directory: current, child: child) }
            if t.point == .planned {
                // Rank 0 holds right after planning: its data file is not even created.
                #expect(!fileExists(current + "/__0_0.distcp"), "\(context): rank 0 wrote before the plan was out")
            }
            histogram[run.state, default: 0] += 1
            byPoint["\(t.point)->\(run.state)", default: 0] += 1

            // The previous checkpoint is intact, with and without checksums.
            for verify in [true, false] {
                let outcome = await loadAndCompare(previous, seed: previousSeed, rows: Self.rows, engine: engine, verifyChecksums: verify)
                guard case .matches = outcome else {
                    Issue.record("\(context): previous checkpoint (verify \(verify)): \(outcome)")
                    continue
                }
            }
            // The interrupted one: complete and right, or refused clearly. Never wrong data.
            let committed = fileExists(current + "/.metadata")
            for verify in [true, false] {
                let outcome = await loadAndCompare(current, seed: t.seed, rows: Self.rows, engine: engine, verifyChecksums: verify)
                switch outcome {
                case .matches:
                    #expect(committed, "\(context): loaded without a committed .metadata")
                case .wrongData:
                    Issue.record("\(context): interrupted checkpoint (verify \(verify), state \(run.state)): \(outcome)")
                case .refused(let error):
                    #expect(!committed, "\(context): committed checkpoint refused (verify \(verify)): \(error)")
                    let clear = isCheckpointError(error, .incompleteCheckpoint, .corrupt)
                        || (run.state == "no-directory" && isCheckpointError(error, .invalidArgument))
                    #expect(clear, "\(context): unclear refusal (state \(run.state)): \(error)")
                    if run.state != "no-directory" {
                        #expect(isCheckpointError(error, .incompleteCheckpoint) && "\(error)".contains(".metadata"), "\(context): \(error)")
                    }
                }
            }
            // The same reader path, without collectives.
            do {
                _ = try await CheckpointReader(directory: current, engine: engine)
                #expect(committed, "\(context): CheckpointReader opened an uncommitted checkpoint")
            } catch {
                #expect(!committed, "\(context): CheckpointReader refused a committed checkpoint: \(error)")
            }
            // Retrying the save into the interrupted directory works; a committed one is refused.
            do {
                try await saveRecipe(current, seed: t.seed, rows: Self.rows, ranks: t.ranks, engine: engine)
                #expect(!committed, "\(context): a save overwrote a committed checkpoint without `overwrite`")
                let outcome = await loadAndCompare(current, seed: t.seed, rows: Self.rows, engine: engine, verifyChecksums: true)
                if case .matches = outcome {} else { Issue.record("\(context): retried save: \(outcome)") }
            } catch {
                #expect(committed, "\(context): retrying the save into the interrupted directory failed: \(error)")
                #expect("\(error)".contains("already holds a committed checkpoint"), "\(context): \(error)")
            }
            #expect(engine.buffers.heldBytes == 0)
        }
        let summary = histogram.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        print("crash-consistency: trials=\(trials) seed=\(baseSeed) states: \(summary)")
        print("crash-consistency: by kill point: \(byPoint.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        // The deterministic kill points reach the states they name.
        if trials >= KillPoint.allCases.count {
            #expect(byPoint["planned->empty-directory", default: 0] + byPoint["planned->data-files", default: 0] > 0, "\(byPoint)")
            #expect(byPoint["dataFsynced->data-files", default: 0] > 0, "\(byPoint)")
            #expect(byPoint["committed->metadata-committed", default: 0] > 0, "\(byPoint)")
        }
    }

    @Test func savingIntoACommittedDirectoryIsRefusedAndLeavesItIntact() async throws {
        let child = try #require(Self.child, "ckpt-crash-child not built next to the tests")
        let engine = try makeEngine(bufferSize: 256 << 10, bufferCount: 32)
        let parent = ScratchDir("ckpt-crash", fast: !Self.onDisk)
        defer { parent.cleanup() }
        let dir = parent.path + "/step-1"
        try await saveRecipe(dir, seed: 5, rows: Self.rows, ranks: 2, engine: engine)
        let lines = try await onThread { () -> [String] in
            let p = try ChildProcess(child, ["save", "--dir", dir, "--seed", "6", "--ranks", "3", "--rows", "\(Self.rows)"])
            _ = p.waitForExit(timeout: 60)
            return p.lines
        }
        #expect(lines.contains { $0.hasPrefix("ERROR") && $0.contains("already holds a committed checkpoint") }, "\(lines)")
        #expect(!lines.contains("DONE") && !lines.contains { $0.hasPrefix("PHASE written") }, "\(lines)")
        let outcome = await loadAndCompare(dir, seed: 5, rows: Self.rows, engine: engine, verifyChecksums: true)
        if case .matches = outcome {} else { Issue.record("refused save damaged the checkpoint: \(outcome)") }
        await engine.shutdown()
    }

    /// `overwrite: true` replaces the old checkpoint atomically at commit: the new one is written
    /// in a staging directory and swapped in, so a crash before the commit leaves the old
    /// checkpoint exactly as it was.
    @Test func overwriteCrashBeforeCommitKeepsTheOldCheckpointWhole() async throws {
        let child = try #require(Self.child, "ckpt-crash-child not built next to the tests")
        let engine = try makeEngine(bufferSize: 256 << 10, bufferCount: 32)
        let parent = ScratchDir("ckpt-crash", fast: !Self.onDisk)
        defer { parent.cleanup() }
        let dir = parent.path + "/latest"
        try await saveRecipe(dir, seed: 11, rows: Self.rows, ranks: 2, engine: engine)
        // Rank 1 holds after planning; rank 0 rewrites and fsyncs its file; then the crash.
        _ = try await onThread {
            let p = try ChildProcess(child, [
                "save", "--dir", dir, "--seed", "12", "--ranks", "2", "--rows", "\(Self.rows)", "--overwrite", "--hold-rank", "1",
            ])
            _ = p.waitForLine(timeout: 30) { $0 == "PHASE written 0" }
            p.killNow()
        }
        for verify in [true, false] {
            let outcome = await loadAndCompare(dir, seed: 11, rows: Self.rows, engine: engine, verifyChecksums: verify)
            if case .matches = outcome {} else { Issue.record("overwrite crash (verify \(verify)): old checkpoint not intact: \(outcome)") }
        }
        await engine.shutdown()
    }
}
