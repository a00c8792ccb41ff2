import Ckpt
import CkptFormat
@_spi(Testing) import CkptIO
import CkptTestSupport
import Foundation
import SystemPackage
import Testing

/// Faults injected through the I/O engine's syscall funnel at every operation index of a small
/// save and of a small load, on both backends: ENOSPC, EIO, EINTR, EAGAIN, short transfers.
///
/// Each run must end within a time bound in success (always, for the retryable faults) or in a
/// typed error naming the file and the operation; leave no descriptor open on the checkpoint's
/// files and no pool buffer held; commit no `.metadata` when the save failed; and a successful
/// run's checkpoint must load bit-exactly (a successful load must return the saved bytes).
/// `CKPT_FAULT_STRIDE` (default 1) tests every k-th operation index only; `CKPT_FAULT_FULL=1`
/// also sweeps loads without checksum verification.
///
/// EAGAIN is only retried where Linux can return it (open, reads, writes); an EAGAIN injected
/// into close, fsync, ftruncate or fstat (which never return it) may fail the run with a typed
/// error. EINTR and short transfers must always be absorbed.
@Suite struct CheckpointFaultTests {
    static let rows = 24
    static let ranks = 2

    enum Kind: String, CaseIterable, Sendable {
        case enospc, eio, eintr, eagain, short

        var fault: IOFaultPlan.Fault {
            switch self {
            case .enospc: return .error(.noSpace)
            case .eio: return .error(.ioError)
            case .eintr: return .error(.interrupted)
            case .eagain: return .error(.resourceTemporarilyUnavailable)
            case .short: return .shortTransfer(1)
            }
        }

        /// Whether the run must succeed when this fault hits an operation of `kind`.
        func mustBeAbsorbed(on kind: String) -> Bool {
            switch self {
            case .enospc, .eio: return false
            case .eintr, .short: return true
            case .eagain: return ["open", "read", "write"].contains(kind)
            }
        }
    }

    static let operationWords = ["open", "close", "read", "write", "fsync", "fdatasync", "truncate", "fallocate", "fstat", "size", "fadvise", "rename", "exchange", "io_uring", "ring"]

    /// Descriptors of this process open on files under `directory`.
    static func descriptors(under directory: String) -> [String] {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.compactMap { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd) else { return nil }
            return target.hasPrefix(directory) ? target : nil
        }
    }

    static func engine(_ backend: IOEngineConfiguration.BackendChoice, plan: IOFaultPlan) throws -> IOEngine {
        try IOEngine(
            configuration: IOEngineConfiguration(backend: backend, queueDepth: 8, bufferSize: 64 << 10, bufferCount: 16),
            faultPlan: plan)
    }

    static let saveOptions = CheckpointOptions(direct: true, directPayloadThreshold: 1024)

    /// One category of violation, counted and reported once with an example.
    struct Findings {
        var counts: [String: Int] = [:]
        var examples: [String: String] = [:]
        mutating func add(_ category: String, _ example: String) {
            counts[category, default: 0] += 1
            if examples[category] == nil { examples[category] = example }
        }
    }

    /// Checks that an error names a file (a path under `directory`) and an operation.
    static func describesFileAndOperation(_ error: any Error, directory: String) -> Bool {
        let text = "\(error)"
        let namesFile = text.contains(directory) || text.contains(".distcp") || text.contains(".metadata")
            || text.contains(Checkpointer.checksumFileName)
        let namesOperation = operationWords.contains { text.localizedCaseInsensitiveContains($0) }
        return namesFile && namesOperation
    }

    static func typed(_ error: any Error) -> Bool { error is CheckpointError || error is IOError }

    static var stride: Int { max(1, Int(ProcessInfo.processInfo.environment["CKPT_FAULT_STRIDE"] ?? "") ?? 1) }

    @Test(arguments: [IOEngineConfiguration.BackendChoice.posix, .ioUring])
    func faultsAtEveryOperationOfASave(backend: IOEngineConfiguration.BackendChoice) async throws {
        let root = ScratchDir("ckpt-fault", fast: true)
        defer { root.cleanup() }
        let checker = try makeEngine(bufferSize: 64 << 10, bufferCount: 16)
        // Fault-free run: how many operations a save makes.
        let clean = try Self.engine(backend, plan: IOFaultPlan())
        try await saveRecipe(root.path + "/clean", seed: 1, rows: Self.rows, ranks: Self.ranks, engine: clean, options: Self.saveOptions)
        let operations = clean.funnelOperationCount
        await clean.shutdown()
        #expect(operations > 10)

        var findings = Findings()
        var outcomes: [String: Int] = [:]
        var runs = 0
        for index in Swift.stride(from: 0, to: operations + 2, by: Self.stride) {
            for kind in Kind.allCases {
                runs += 1
                let dir = root.path + "/s-\(index)-\(kind)"
                let context = "\(backend) save, \(kind) at operation \(index) of \(operations)"
                let engine: IOEngine
                do {
                    engine = try Self.engine(backend, plan: IOFaultPlan([.init(index: index, fault: kind.fault)]))
                } catch {
                    // The fault hit the ring setup: a typed refusal.
                    if !(error is IOError) { findings.add("untyped engine error", "\(context): \(error)") }
                    outcomes["engine refused", default: 0] += 1
                    continue
                }
                let fired = { engine.firedFaults.first.map { "\($0.kind)" } ?? "none" }
                do {
                    try await saveRecipe(dir, seed: UInt64(index + 2), rows: Self.rows, ranks: Self.ranks, engine: engine, options: Self.saveOptions)
                    outcomes["saved", default: 0] += 1
                    let outcome = await loadAndCompare(dir, seed: UInt64(index + 2), rows: Self.rows, engine: checker, verifyChecksums: true)
                    if case .matches = outcome {} else { findings.add("saved but does not load back", "\(context) (hit \(fired())): \(outcome)") }
                } catch let error as TimeoutError {
                    findings.add("hang", "\(context) (hit \(fired())): \(error)")
                    continue
                } catch {
                    outcomes["failed", default: 0] += 1
                    if kind.mustBeAbsorbed(on: fired()) { findings.add("retryable \(kind) on \(fired()) failed the save", "\(context): \(error)") }
                    if !Self.typed(error) { findings.add("untyped error", "\(context): \(type(of: error)) \(error)") }
                    if !Self.describesFileAndOperation(error, directory: dir) {
                        findings.add("error does not name the file and operation (\(fired()))", "\(context): \(error)")
                    }
                    if fileExists(dir + "/.metadata") { findings.add(".metadata committed after a failed save", "\(context): \(error)") }
                }
                if engine.buffers.heldBytes != 0 { findings.add("pool buffers held", "\(context): \(engine.buffers.heldBytes) bytes") }
                await engine.shutdown()
                let open = Self.descriptors(under: dir)
                if !open.isEmpty { findings.add("descriptors leaked", "\(context): \(open)") }
            }
        }
        await checker.shutdown()
        print("fault-injection: \(backend) save: \(operations) operations, \(runs) faulted runs, outcomes \(outcomes.sorted { $0.key < $1.key })")
        for (category, count) in findings.counts.sorted(by: { $0.key < $1.key }) {
            let message = "\(backend) save: \(category): \(count) run(s), e.g. \(findings.examples[category] ?? "")"
            Issue.record(Comment(rawValue: message))
        }
    }

    @Test(arguments: [IOEngineConfiguration.BackendChoice.posix, .ioUring])
    func faultsAtEveryOperationOfALoad(backend: IOEngineConfiguration.BackendChoice) async throws {
        let root = ScratchDir("ckpt-fault", fast: true)
        defer { root.cleanup() }
        let dir = root.path + "/ckpt"
        let writer = try makeEngine(bufferSize: 64 << 10, bufferCount: 16)
        try await saveRecipe(dir, seed: 9, rows: Self.rows, ranks: Self.ranks, engine: writer, options: Self.saveOptions)
        await writer.shutdown()

        let full = ProcessInfo.processInfo.environment["CKPT_FAULT_FULL"] == "1"
        for verify in full ? [false, true] : [true] {
            let clean = try Self.engine(backend, plan: IOFaultPlan())
            let baseline = await loadAndCompare(dir, seed: 9, rows: Self.rows, engine: clean, verifyChecksums: verify)
            let operations = clean.funnelOperationCount
            await clean.shutdown()
            guard case .matches = baseline else {
                Issue.record("fault-free load failed: \(baseline)")
                return
            }
            var findings = Findings()
            var outcomes: [String: Int] = [:]
            var runs = 0
            for index in Swift.stride(from: 0, to: operations + 2, by: Self.stride) {
                for kind in Kind.allCases {
                    runs += 1
                    let context = "\(backend) load (verify \(verify)), \(kind) at operation \(index) of \(operations)"
                    let engine: IOEngine
                    do {
                        engine = try Self.engine(backend, plan: IOFaultPlan([.init(index: index, fault: kind.fault)]))
                    } catch {
                        if !(error is IOError) { findings.add("untyped engine error", "\(context): \(error)") }
                        outcomes["engine refused", default: 0] += 1
                        continue
                    }
                    let fired = engine.firedFaults.first.map { "\($0.kind)" } ?? "none"
                    let outcome = await loadAndCompare(dir, seed: 9, rows: Self.rows, engine: engine, verifyChecksums: verify)
                    let hit = engine.firedFaults.first.map { "\($0.kind)" } ?? fired
                    switch outcome {
                    case .matches:
                        outcomes["loaded", default: 0] += 1
                    case .wrongData:
                        findings.add("WRONG DATA returned", "\(context) (hit \(hit)): \(outcome)")
                    case .refused(let error):
                        outcomes["failed", default: 0] += 1
                        if error is TimeoutError { findings.add("hang", "\(context) (hit \(hit)): \(error)"); continue }
                        if kind.mustBeAbsorbed(on: hit) { findings.add("retryable \(kind) on \(hit) failed the load", "\(context): \(error)") }
                        if !Self.typed(error) { findings.add("untyped error", "\(context): \(type(of: error)) \(error)") }
                        if !Self.describesFileAndOperation(error, directory: dir) {
                            findings.add("error does not name the file and operation (\(hit))", "\(context): \(error)")
                        }
                    }
                    if engine.buffers.heldBytes != 0 { findings.add("pool buffers held", "\(context): \(engine.buffers.heldBytes) bytes") }
                    await engine.shutdown()
                    let open = Self.descriptors(under: dir)
                    if !open.isEmpty { findings.add("descriptors leaked", "\(context): \(open)") }
                }
            }
            print("fault-injection: \(backend) load (verify \(verify)): \(operations) operations, \(runs) faulted runs, outcomes \(outcomes.sorted { $0.key < $1.key })")
            for (category, count) in findings.counts.sorted(by: { $0.key < $1.key }) {
                Issue.record(Comment(rawValue: "\(backend) load (verify \(verify)): \(category): \(count) run(s), e.g. \(findings.examples[category] ?? "")"))
            }
        }
    }
}
