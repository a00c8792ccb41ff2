import CkptTestSupport
import Foundation
import Glibc
import Testing
@_spi(Testing) @testable import CkptIO

/// `IORequest.readv`/`.writev`: one transfer for several buffers when the file allows it, one
/// per buffer otherwise, and the same bytes either way, whatever fails on the way.
extension SerialIOTests {
    @Suite
    struct VectoredIOTests {
        /// Segment lengths: aligned ones, one larger than the test engine's 64 KiB block (a
        /// vectored transfer is not split by block size).
        static let lengths = [8192, 3 * 4096, 2 * 65_536 + 4096, 4096]

        static func segments(_ lengths: [Int], misalign: Int = 0) -> [TestBytes] {
            lengths.map { TestBytes($0, misalign: misalign) }
        }

        static func payload(_ count: Int, seed: UInt64) -> [UInt8] {
            var rng = SplitMix64(seed: seed)
            return Support.randomBytes(count, &rng)
        }

        /// Writes `data` through `writev` from segments of `lengths`, reads it back with `readv`
        /// into fresh segments; returns the bytes read and the read/write operations the funnel saw.
        static func roundTrip(
            _ engine: IOEngine, path: String, direct: Bool, offset: Int64, lengths: [Int], misalign: Int, data: [UInt8]
        ) async throws -> (bytes: [UInt8], operations: Int) {
            let sources = segments(lengths, misalign: misalign)
            var at = 0
            for s in sources {
                data.withUnsafeBytes { s.raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[at..<(at + s.raw.count)])) }
                at += s.raw.count
            }
            let transfers = { engine.syscalls.operationCount(.read) + engine.syscalls.operationCount(.write) }
            let before = transfers()
            let w = try engine.open(path, mode: .write(create: true, truncate: true), direct: direct)
            try await engine.perform([.writev(w, offset: offset, from: sources.map(\.readOnly))])
            try engine.close(w)
            let r = try engine.open(path, mode: .read, direct: direct)
            let targets = segments(lengths, misalign: misalign)
            try await engine.perform([.readv(r, offset: offset, into: targets.map(\.raw))])
            try engine.close(r)
            let operations = transfers() - before
            return (targets.flatMap(\.array), operations)
        }

        @Test(arguments: Mode.all)
        func alignedSegmentsTravelAsOneTransferEach(mode: Mode) async throws {
            guard let engine = try Support.engine(mode.backend) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let data = Self.payload(Self.lengths.reduce(0, +), seed: 7)
            let (bytes, operations) = try await Self.roundTrip(
                engine, path: "\(dir)/v", direct: mode.direct, offset: 8192, lengths: Self.lengths, misalign: 0, data: data)
            #expect(bytes == data)
            // One writev and one readv, although a plain transfer of this size takes several blocks.
            #expect(operations == 2, "\(mode.testDescription): \(operations) transfers")
            await engine.shutdown()
        }

        @Test(arguments: Mode.all)
        func misalignedSegmentsFallBackToOneTransferPerBuffer(mode: Mode) async throws {
            guard let engine = try Support.engine(mode.backend) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let lengths = [5000, 4096, 70_001]
            let data = Self.payload(lengths.reduce(0, +), seed: 8)
            let (bytes, operations) = try await Self.roundTrip(
                engine, path: "\(dir)/m", direct: mode.direct, offset: 1000, lengths: lengths, misalign: 3, data: data)
            #expect(bytes == data)
            if mode.direct {
                #expect(operations > 2, "\(mode.testDescription): misaligned segments cannot be one O_DIRECT transfer")
            } else {
                #expect(operations == 2, "\(mode.testDescription): buffered files take any segments")
            }
            await engine.shutdown()
        }

        @Test(arguments: Mode.all)
        func readPastTheEndNamesTheRequest(mode: Mode) async throws {
            guard let engine = try Support.engine(mode.backend) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let path = "\(dir)/short"
            let data = Self.payload(3 * 4096, seed: 9)
            let w = try engine.open(path, mode: .write(create: true, truncate: true), direct: false)
            let source = TestBytes(data)
            try await engine.write(w, at: 0, from: source.readOnly)
            try engine.close(w)
            let r = try engine.open(path, mode: .read, direct: mode.direct)
            let targets = Self.segments([4096, 8192, 4096])
            let error = await #expect(throws: IOError.self) {
                try await engine.perform([.readv(r, offset: 4096, into: targets.map(\.raw))])
            }
            #expect(error?.code == .unexpectedEndOfFile)
            #expect(error?.offset == 4096)
            #expect(error?.expectedBytes == 16_384)
            #expect(error?.transferredBytes == 8192)
            #expect(error?.path == path)
            // What the file held did land.
            #expect(targets[0].array + targets[1].array.prefix(4096) == Array(data[4096...]))
            try engine.close(r)
            await engine.shutdown()
        }

        /// Every fault at every operation of a vectored write + fsync + vectored read: transient
        /// faults and short transfers are absorbed (the rest goes buffer by buffer), hard errors
        /// surface with the file, and nothing leaks.
        @Test(arguments: Mode.all)
        func everyFaultAtEveryOperation(mode: Mode) async throws {
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let data = Self.payload(Self.lengths.reduce(0, +), seed: 10)
            func run(_ plan: IOFaultPlan) async -> (Result<[UInt8], any Error>, Int, IOEngine?) {
                let engine: IOEngine
                do {
                    guard let e = try Support.engine(mode.backend, plan: plan) else {
                        return (.failure(IOError.make(.backendUnavailable, "no ring")), 0, nil)
                    }
                    engine = e
                } catch {
                    return (.failure(error), 0, nil)
                }
                let sources = Self.segments(Self.lengths)
                var at = 0
                for s in sources {
                    data.withUnsafeBytes { s.raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[at..<(at + s.raw.count)])) }
                    at += s.raw.count
                }
                let targets = Self.segments(Self.lengths)
                var files: [IOFile] = []
                let result: Result<[UInt8], any Error>
                do {
                    let w = try engine.open("\(dir)/f", mode: .write(create: true, truncate: true), direct: mode.direct)
                    files.append(w)
                    try await engine.perform([.writev(w, offset: 4096, from: sources.map(\.readOnly)), .fsync(w)])
                    let r = try engine.open("\(dir)/f", mode: .read, direct: mode.direct)
                    files.append(r)
                    try await engine.perform([.readv(r, offset: 4096, into: targets.map(\.raw))])
                    result = .success(targets.flatMap(\.array))
                } catch {
                    result = .failure(error)
                }
                for f in files { try? engine.close(f) }
                await engine.shutdown()
                return (result, engine.funnelOperationCount, engine)
            }
            let (clean, count, cleanEngine) = await run(.init())
            guard cleanEngine != nil else { return }
            #expect((try? clean.get()) == data)
            let faults: [IOFaultPlan.Fault] = [
                .error(.ioError), .error(.interrupted), .error(.resourceTemporarilyUnavailable), .shortTransfer(1),
                .shortTransfer(4096), .shortTransfer(12_288),
            ]
            for fault in faults {
                for k in 0..<count {
                    let (outcome, _, engine) = await run(IOFaultPlan([.init(index: k, fault: fault)]))
                    let what = "\(mode.testDescription): \(fault) at operation \(k)"
                    guard engine != nil else {
                        #expect(k == 0 && mode.backend == .ioUring, "\(what): the engine could not start")
                        continue
                    }
                    let kind = engine?.firedFaults.first?.kind
                    #expect(engine?.buffers.heldBytes ?? 0 == 0, "\(what) leaked a buffer")
                    switch outcome {
                    case .success(let bytes):
                        #expect(bytes == data, "\(what) returned wrong bytes")
                        if fault == .error(.ioError), kind != .close {
                            Issue.record("\(what) fired on \(kind.map { "\($0)" } ?? "nothing") but succeeded")
                        }
                    case .failure(let error as IOError):
                        if fault == .error(.ioError) {
                            #expect(error.errno == .ioError, "\(what): \(error)")
                            if kind == .read || kind == .write { #expect(error.path == "\(dir)/f", "\(what): \(error)") }
                        } else {
                            #expect(kind == .close, "\(what) on \(kind.map { "\($0)" } ?? "?") surfaced \(error)")
                        }
                    case .failure(let error):
                        Issue.record("\(what) threw an untyped error \(error)")
                    }
                }
            }
        }
    }
}
