import CkptTestSupport
import Foundation
import Glibc
import SystemPackage
import Testing
@_spi(Testing) @testable import CkptIO

/// Faults injected through the syscall funnel at every operation of a small workload.
extension SerialIOTests {
    @Suite
    struct FaultInjectionTests {
        struct Outcome {
            var error: (any Error)?
            var data: [UInt8]?
            var fired: [(rule: IOFaultPlan.Rule, kind: IOSyscall)]
            var operations: Int
            var heldBytes: Int
        }

        static let payload: [UInt8] = {
            var rng = SplitMix64(seed: 2024)
            return Support.randomBytes(150_000, &rng)
        }()

        /// Create engine, write 150 000 bytes at offset 1000 from misaligned memory (unaligned head
        /// and tail, staged middle), fsync, close, reopen, read back, close, shut down.
        static func workload(_ mode: Mode, _ plan: IOFaultPlan, dir: String) async -> Outcome {
            let engine: IOEngine
            do {
                engine = try IOEngine(configuration: Support.configuration(mode.backend), faultPlan: plan)
            } catch {
                return Outcome(error: error, data: nil, fired: [], operations: 0, heldBytes: 0)
            }
            var open: [IOFile] = []
            var data: [UInt8]?
            var failure: (any Error)?
            do {
                let path = "\(dir)/w"
                let w = try engine.open(path, mode: .write(create: true, truncate: true), direct: mode.direct)
                open.append(w)
                let source = TestBytes(payload, misalign: 3)
                try await engine.write(w, at: 1000, from: source.readOnly)
                try await engine.fsync(w)
                open.removeAll()
                try engine.close(w)
                let r = try engine.open(path, mode: .read, direct: mode.direct)
                open.append(r)
                let out = TestBytes(payload.count, misalign: 1)
                try await engine.read(r, at: 1000, into: out.raw)
                open.removeAll()
                try engine.close(r)
                data = out.array
            } catch {
                failure = error
            }
            for f in open { try? engine.close(f) }
            await engine.shutdown()
            return Outcome(
                error: failure, data: data, fired: engine.firedFaults, operations: engine.funnelOperationCount,
                heldBytes: engine.buffers.heldBytes)
        }

        static let faults: [IOFaultPlan.Fault] = [
            .error(.noSpace), .error(.ioError), .error(.interrupted), .error(.resourceTemporarilyUnavailable),
            .shortTransfer(1), .shortTransfer(100),
        ]

        @Test(arguments: Mode.all)
        func everyFaultAtEveryOperation(mode: Mode) async throws {
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let clean = await Self.workload(mode, .init(), dir: dir)
            if let error = clean.error as? IOError, error.code == .backendUnavailable {
                print("SKIP io_uring fault sweep: \(error.message)")
                return
            }
            #expect(clean.error == nil)
            #expect(clean.data == Self.payload)
            let count = clean.operations
            #expect(count > 10)
            let baseline = Support.openFDCount()
            for fault in Self.faults {
                for k in 0..<count {
                    let plan = IOFaultPlan([.init(index: k, fault: fault)])
                    let start = ContinuousClock.now
                    let outcome = await Self.workload(mode, plan, dir: dir)
                    let what = "\(mode.testDescription): \(fault) at operation \(k)"
                    #expect(ContinuousClock.now - start < .seconds(5), "\(what) too slow")
                    #expect(outcome.heldBytes == 0, "\(what) leaked a buffer")
                    if Support.openFDCount() != baseline {
                        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
                        let links = fds.map { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) ?? "?" }
                        Issue.record("\(what) leaked a descriptor: \(links.sorted())")
                    }
                    let hitKind = outcome.fired.first?.kind ?? .ringSetup
                    switch outcome.error {
                    case nil:
                        #expect(outcome.data == Self.payload, "\(what) returned wrong bytes")
                        if case .error(let e) = fault, e == .noSpace || e == .ioError {
                            Issue.record("\(what) fired on \(hitKind) but the workload succeeded")
                        }
                    case let error as IOError:
                        #expect(!error.message.isEmpty && !error.description.isEmpty)
                        switch fault {
                        case .error(let e) where e == .noSpace || e == .ioError:
                            #expect(error.errno == e, "\(what): \(error)")
                            if hitKind == .read || hitKind == .write {
                                #expect(error.path != nil && error.offset != nil, "\(what): \(error)")
                            }
                        default:
                            // Transient faults are absorbed, except where retrying is not sound:
                            // ring setup (explicit io_uring) and close (the descriptor is gone).
                            #expect(hitKind == .ringSetup || hitKind == .close, "\(what) on \(hitKind) surfaced \(error)")
                        }
                    case let error?:
                        Issue.record("\(what) threw an untyped error \(error)")
                    }
                }
            }
        }

        @Test(arguments: [IOBackendKind.ioUring, .posix])
        func faultsCountedPerKindNameTheOperation(backend: IOBackendKind) async throws {
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let plan = IOFaultPlan([.init(index: 1, kind: .write, fault: .error(.noSpace))])
            let engine: IOEngine
            do {
                engine = try IOEngine(configuration: Support.configuration(backend), faultPlan: plan)
            } catch {
                print("SKIP: \(error)")
                return
            }
            let f = try engine.open("\(dir)/p", mode: .write(create: true, truncate: true), direct: false)
            let data = TestBytes(200_000)
            // 64 KiB blocks: the second write (offset 65536) fails with ENOSPC.
            let error = await #expect(throws: IOError.self) { try await engine.write(f, at: 0, from: data.readOnly) }
            #expect(error?.code == .noSpace)
            // io_uring counts completions, which arrive in any order within a batch.
            #expect(error.map { $0.offset.map { $0 % 65_536 == 0 && $0 < 200_000 } ?? false } == true)
            #expect(error?.message.contains("pwrite") == true)
            #expect(error?.message.contains("\(dir)/p") == true)
            #expect(error?.errno == .noSpace)
            #expect(engine.firedFaults.count == 1)
            try engine.close(f)
            await engine.shutdown()
        }

        @Test(arguments: [IOBackendKind.ioUring, .posix])
        func persistentTransientFaultsGiveUpInBoundedTime(backend: IOBackendKind) async throws {
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            // Every write fails with EAGAIN: bounded retries, then a typed error.
            let plan = IOFaultPlan((0..<1000).map { .init(index: $0, kind: .write, fault: .error(.resourceTemporarilyUnavailable)) })
            let engine: IOEngine
            do {
                engine = try IOEngine(configuration: Support.configuration(backend), faultPlan: plan)
            } catch {
                print("SKIP: \(error)")
                return
            }
            let f = try engine.open("\(dir)/t", mode: .write(create: true, truncate: true), direct: false)
            let data = TestBytes(5000)
            await Support.timed(5, "persistent EAGAIN") {
                let error = await #expect(throws: IOError.self) { try await engine.write(f, at: 0, from: data.readOnly) }
                #expect(error?.code == .retriesExhausted)
            }
            try engine.close(f)
            await engine.shutdown()
        }
    }
}
