import CkptTestSupport
import Foundation
import Glibc
import Synchronization
import SystemPackage
import Testing
@_spi(Testing) @testable import CkptIO

/// Everything runs serialized so the process-wide open-descriptor count is a meaningful leak check.
extension SerialIOTests {
    @Suite
    struct IOEngineTests {
        /// Creating and shutting down many engines leaves no io_uring descriptor behind. Other
        /// targets' tests may hold a few rings meanwhile, hence the margin far below 40.
        @Test func ringDescriptorsAreReleased() async throws {
            let before = Support.ringDescriptorCount()
            for _ in 0..<40 {
                let engine = try IOEngine(configuration: .init(backend: .automatic, bufferSize: 4096, bufferCount: 1))
                await engine.shutdown()
            }
            #expect(Support.ringDescriptorCount() - before < 8)
        }

        // MARK: Correctness

        @Test(arguments: Mode.all)
        func concurrentRandomTransfersAcrossFiles(mode: Mode) async throws {
            let baseline = Support.openFDCount()
            guard let engine = try Support.engine(mode.backend) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let seed = UInt64.random(in: 0...UInt64.max)
            var rng = SplitMix64(seed: seed)
            let fileCount = 4
            let fileSize = 300_000
            // Reference contents and files.
            var contents: [[UInt8]] = []
            var files: [IOFile] = []
            for i in 0..<fileCount {
                contents.append(Support.randomBytes(fileSize, &rng))
                files.append(try engine.open("\(dir)/f\(i)", mode: .readWrite(create: true, truncate: true), direct: mode.direct))
            }
            // Write every file in random unaligned slices, all concurrently.
            var slices: [(Int, Int, Int)] = []
            for f in 0..<fileCount {
                var at = 0
                while at < fileSize {
                    let n = min(fileSize - at, Int.random(in: 1...150_000, using: &rng))
                    slices.append((f, at, n))
                    at += n
                }
            }
            slices.shuffle(using: &rng)
            let snapshot = contents
            let sources = contents.enumerated().map { TestBytes($0.element, misalign: $0.offset % 2) }
            let fileList = files
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (f, at, n) in slices {
                    group.addTask {
                        try await engine.write(fileList[f], at: Int64(at), from: sources[f].slice(at..<(at + n)))
                    }
                }
                try await group.waitForAll()
            }
            try await engine.perform(files.map { .fsync($0) })
            for f in files { #expect(try engine.size(of: f) == Int64(fileSize)) }
            // Random reads, concurrently, compared with the reference.
            var reads: [(Int, Int, Int)] = []
            for _ in 0..<40 {
                let f = Int.random(in: 0..<fileCount, using: &rng)
                let at = Int.random(in: 0..<fileSize, using: &rng)
                reads.append((f, at, Int.random(in: 1...(fileSize - at), using: &rng)))
            }
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for (f, at, n) in reads {
                    group.addTask {
                        let out = TestBytes(n, misalign: n % 3)
                        try await engine.read(fileList[f], at: Int64(at), into: out.raw)
                        return out.array[...] == snapshot[f][at..<(at + n)] ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0, "seed \(seed)")
            // Aligned caller memory takes the direct-from-caller path.
            let aligned = TestBytes(196_608)
            try await engine.read(files[0], at: 4096, into: aligned.raw)
            #expect(Array(aligned.raw) == Array(contents[0][4096..<(4096 + 196_608)]), "seed \(seed)")
            for f in files { try engine.close(f) }
            #expect(engine.buffers.heldBytes == 0)
            await engine.shutdown()
            #expect(Support.openFDCount() == baseline)
        }

        @Test(arguments: Mode.all)
        func batchOfReadsWritesAndFlushes(mode: Mode) async throws {
            let baseline = Support.openFDCount()
            guard let engine = try Support.engine(mode.backend, queueDepth: 16) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            var rng = SplitMix64(seed: 42)
            let a = try engine.open("\(dir)/a", mode: .readWrite(create: true, truncate: true), direct: mode.direct)
            let b = try engine.open("\(dir)/b", mode: .readWrite(create: true, truncate: true), direct: mode.direct)
            let data = TestBytes(1 << 20)
            for i in 0..<data.raw.count { data.raw[i] = UInt8(truncatingIfNeeded: rng.next()) }
            let half = UnsafeRawBufferPointer(rebasing: data.raw[0..<(512 << 10)])
            let rest = UnsafeRawBufferPointer(rebasing: data.raw[(512 << 10)...])
            let before = engine.submitCalls
            try await engine.perform([
                .write(a, offset: 0, from: half), .write(a, offset: Int64(half.count), from: rest),
                .write(b, offset: 100, from: UnsafeRawBufferPointer(data.raw)), .fsync(a), .fsync(b),
            ])
            // 16 + 16 blocks of 64 KiB and two flushes, submitted several operations at a time.
            #expect(engine.submitCalls - before < 34)
            let outA = TestBytes(1 << 20)
            let outB = TestBytes(1 << 20)
            try await engine.perform([.read(a, offset: 0, into: outA.raw), .read(b, offset: 100, into: outB.raw)])
            #expect(Array(outA.raw) == Array(data.raw))
            #expect(Array(outB.raw) == Array(data.raw))
            try engine.close(a)
            try engine.close(b)
            await engine.shutdown()
            #expect(Support.openFDCount() == baseline)
        }

        @Test(arguments: Mode.all)
        func readingPastEndOfFileIsATypedError(mode: Mode) async throws {
            let baseline = Support.openFDCount()
            guard let engine = try Support.engine(mode.backend) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let path = "\(dir)/short"
            let f = try engine.open(path, mode: .readWrite(create: true, truncate: true), direct: mode.direct)
            let bytes = TestBytes([UInt8](repeating: 7, count: 10_000))
            try await engine.write(f, at: 0, from: bytes.readOnly)
            let out = TestBytes(200_000)
            let error = await #expect(throws: IOError.self) { try await engine.read(f, at: 1000, into: out.raw) }
            #expect(error?.code == .unexpectedEndOfFile)
            #expect(error?.expectedBytes == 200_000)
            #expect(error?.transferredBytes == 9_000)
            #expect(error?.path == path)
            #expect(error?.offset == 1000)
            #expect(error?.description.contains(path) == true)
            try engine.close(f)
            #expect(engine.buffers.heldBytes == 0)
            await engine.shutdown()
            #expect(Support.openFDCount() == baseline)
        }

        // MARK: Buffer pool

        @Test func poolBackpressureBoundsMemory() async throws {
            let pool = try IOBufferPool(bufferSize: 4096, count: 2)
            #expect(pool.capacityBytes == 8192)
            let a = try await pool.acquire()
            let b = try await pool.acquire()
            #expect(pool.heldBytes == 8192)
            #expect(Int(bitPattern: a.bytes.baseAddress) % 4096 == 0)
            let waiter = Task { try await pool.acquire() }
            try await Task.sleep(for: .milliseconds(20))
            #expect(pool.heldBytes == 8192)
            pool.release(a)
            let c = try await waiter.value
            #expect(c.index == a.index)
            // A cancelled waiter throws and takes nothing.
            let cancelled = Task { try await pool.acquire() }
            try await Task.sleep(for: .milliseconds(10))
            cancelled.cancel()
            await #expect(throws: CancellationError.self) { try await cancelled.value }
            pool.release(b)
            pool.release(c)
            pool.release(c)  // double release is ignored
            #expect(pool.heldBytes == 0)
            #expect(pool.peakHeldBytes == 8192)
        }

        @Test(arguments: [IOBackendKind.ioUring, .posix])
        func manyConcurrentStagedTransfersStayWithinThePool(backend: IOBackendKind) async throws {
            let baseline = Support.openFDCount()
            guard let engine = try Support.engine(backend, bufferCount: 2) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let f = try engine.open("\(dir)/big", mode: .readWrite(create: true, truncate: true), direct: true)
            var rng = SplitMix64(seed: 7)
            let data = Support.randomBytes(3 << 20, &rng)
            // Misaligned caller memory: the middle goes through the 2 pool buffers.
            let source = TestBytes(Array(data[1...]), misalign: 8)
            try await engine.write(f, at: 1, from: source.readOnly)
            #expect(engine.buffers.peakHeldBytes <= engine.buffers.capacityBytes)
            let out = TestBytes(data.count - 1, misalign: 5)
            try await engine.read(f, at: 1, into: out.raw)
            #expect(out.array[...] == data[1...])
            #expect(engine.buffers.heldBytes == 0)
            try engine.close(f)
            await engine.shutdown()
            #expect(Support.openFDCount() == baseline)
        }

        // MARK: Cancellation and shutdown

        @Test(arguments: Mode.all)
        func cancellationEndsTransfersWithoutLeaks(mode: Mode) async throws {
            let baseline = Support.openFDCount()
            guard let engine = try Support.engine(mode.backend, bufferCount: 2) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let f = try engine.open("\(dir)/c", mode: .readWrite(create: true, truncate: true), direct: mode.direct)
            let data = TestBytes([UInt8](repeating: 1, count: 32 << 20))
            // Cancelled before it starts: nothing is written.
            let early = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                try await engine.write(f, at: 0, from: data.readOnly)
            }
            await #expect(throws: CancellationError.self) { try await early.value }
            // Cancelled while in flight: ends with success or cancellation, quickly.
            let late = Task {
                try await engine.write(f, at: 1, from: data.readOnly)
            }
            try await Task.sleep(for: .milliseconds(5))
            late.cancel()
            await Support.timed(10, "cancelled write") {
                do { try await late.value } catch is CancellationError {} catch { Issue.record("\(error)") }
            }
            #expect(engine.buffers.heldBytes == 0)
            try engine.close(f)
            await engine.shutdown()
            #expect(Support.openFDCount() == baseline)
        }

        @Test(arguments: Mode.all)
        func cancellationStormLeavesNothingBehind(mode: Mode) async throws {
            let baseline = Support.openFDCount()
            guard let engine = try Support.engine(mode.backend, queueDepth: 4, bufferCount: 3) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let seed = UInt64.random(in: 0...UInt64.max)
            var rng = SplitMix64(seed: seed)
            let files = try (0..<3).map {
                try engine.open("\(dir)/storm\($0)", mode: .readWrite(create: true, truncate: true), direct: mode.direct)
            }
            let source = TestBytes(Support.randomBytes(400_000, &rng), misalign: 1)
            for f in files { try await engine.write(f, at: 0, from: source.readOnly) }
            var tasks: [Task<Void, any Error>] = []
            for i in 0..<120 {
                let f = files[i % 3]
                let at = Int64(Int.random(in: 0..<200_000, using: &rng))
                let n = Int.random(in: 1...200_000, using: &rng)
                let isRead = rng.next() % 2 == 0
                let buffer = TestBytes(n, misalign: Int(rng.next() % 2))
                tasks.append(Task {
                    if isRead {
                        try await engine.read(f, at: at, into: buffer.raw)
                        #expect(buffer.array[...] == source.array[Int(at)..<(Int(at) + n)], "seed \(seed)")
                    } else {
                        try await engine.write(f, at: at, from: source.slice(Int(at)..<(Int(at) + n)))
                    }
                })
            }
            for (i, t) in tasks.enumerated() where i % 2 == 0 { t.cancel() }
            for t in tasks.suffix(30) { t.cancel() }
            await Support.timed(20, "cancellation storm") {
                for t in tasks {
                    do { try await t.value } catch is CancellationError {} catch { Issue.record("seed \(seed): \(error)") }
                }
            }
            #expect(engine.buffers.heldBytes == 0)
            for f in files { try engine.close(f) }
            await engine.shutdown()
            #expect(Support.openFDCount() == baseline)
        }

        @Test func uringCancelsABlockedReadThroughAsyncCancel() async throws {
            let baseline = Support.openFDCount()
            guard let engine = try Support.engine(.ioUring) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let path = "\(dir)/fifo"
            #expect(mkfifo(path, 0o600) == 0)
            // O_RDWR on a FIFO does not block at open; a read then waits for data forever.
            let fifo = try engine.open(path, mode: .readWrite(create: false), direct: false)
            let out = TestBytes(4096)
            let reader = Task { try await engine.read(fifo, at: 0, into: out.raw) }
            try await Task.sleep(for: .milliseconds(50))
            reader.cancel()
            await Support.timed(5, "cancel of a blocked read") {
                await #expect(throws: CancellationError.self) { try await reader.value }
            }
            // The cancelled read has completed in the kernel: data arriving now must not land in
            // the caller's buffer.
            let writer = open(path, O_WRONLY | O_NONBLOCK)
            #expect(writer >= 0)
            let ones = [UInt8](repeating: 0xAB, count: 4096)
            #expect(ones.withUnsafeBytes { Glibc.write(writer, $0.baseAddress, 4096) } == 4096)
            try await Task.sleep(for: .milliseconds(20))
            #expect(out.raw.allSatisfy { $0 == 0 })
            // Drain the FIFO so the next read blocks again.
            let drain = TestBytes(4096)
            try await engine.read(fifo, at: 0, into: drain.raw)
            #expect(drain.raw.allSatisfy { $0 == 0xAB })
            Glibc.close(writer)
            // Shutdown with a blocked read in flight: the read fails with a typed shutdown error.
            let blocked = Task { try await engine.read(fifo, at: 0, into: out.raw) }
            try await Task.sleep(for: .milliseconds(50))
            await Support.timed(5, "shutdown with a blocked read") {
                await engine.shutdown()
                let error = await #expect(throws: IOError.self) { try await blocked.value }
                #expect(error?.code == .shutdown)
            }
            try engine.close(fifo)
            #expect(Support.openFDCount() == baseline)
        }

        @Test(arguments: Mode.all)
        func shutdownWithOperationsInFlight(mode: Mode) async throws {
            let baseline = Support.openFDCount()
            guard let engine = try Support.engine(mode.backend, bufferCount: 2) else { return }
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            var files: [IOFile] = []
            for i in 0..<3 {
                files.append(try engine.open("\(dir)/s\(i)", mode: .readWrite(create: true, truncate: true), direct: mode.direct))
            }
            let data = TestBytes([UInt8](repeating: 3, count: 8 << 20), misalign: mode.direct ? 0 : 1)
            let fileList = files
            let tasks = (0..<6).map { i in
                Task {
                    try await engine.write(fileList[i % 3], at: Int64(i * 4096), from: data.readOnly)
                }
            }
            try await Task.sleep(for: .milliseconds(3))
            await Support.timed(10, "shutdown with writes in flight") {
                await engine.shutdown()
                for t in tasks {
                    do {
                        try await t.value
                    } catch let e as IOError {
                        #expect(e.code == .shutdown, "\(e)")
                    } catch {
                        Issue.record("unexpected \(error)")
                    }
                }
            }
            await engine.shutdown()  // idempotent
            let after = await #expect(throws: IOError.self) { try await engine.fsync(fileList[0]) }
            #expect(after?.code == .shutdown)
            #expect(engine.buffers.heldBytes == 0)
            for f in files { try engine.close(f) }
            #expect(Support.openFDCount() == baseline)
        }

        // MARK: Backend selection

        @Test func automaticFallbackWhenRingSetupFails() async throws {
            for errno in [Errno.noFunction, .notPermitted, .permissionDenied, .invalidArgument] {
                let plan = IOFaultPlan([.init(index: 0, kind: .ringSetup, fault: .error(errno))])
                let engine = try IOEngine(configuration: .init(backend: .automatic, bufferSize: 4096, bufferCount: 2), faultPlan: plan)
                #expect(engine.backend == .posix)
                #expect(engine.backendReason.contains("fallback"))
                #expect(engine.backendReason.contains("\(errno.rawValue)"))
                // The fallback engine works.
                let dir = try Support.tempDir()
                let f = try engine.open("\(dir)/x", mode: .readWrite(create: true, truncate: true))
                let nines = TestBytes([UInt8](repeating: 9, count: 5000))
                try await engine.write(f, at: 0, from: nines.readOnly)
                #expect(try engine.size(of: f) == 5000)
                try engine.close(f)
                Support.remove(dir)
                await engine.shutdown()
            }
            // Explicit io_uring does not fall back; other errors are not swallowed.
            let plan = IOFaultPlan([.init(index: 0, kind: .ringSetup, fault: .error(.notPermitted))])
            let explicit = #expect(throws: IOError.self) {
                _ = try IOEngine(configuration: .init(backend: .ioUring, bufferSize: 4096, bufferCount: 1), faultPlan: plan)
            }
            #expect(explicit?.code == .backendUnavailable)
            let eio = IOFaultPlan([.init(index: 0, kind: .ringSetup, fault: .error(.ioError))])
            #expect(throws: IOError.self) {
                _ = try IOEngine(configuration: .init(backend: .automatic, bufferSize: 4096, bufferCount: 1), faultPlan: eio)
            }
        }

        @Test func directOpenRefusedFallsBackToBufferedWithAFlag() async throws {
            // The first open (with O_DIRECT) fails with EINVAL, as on file systems without O_DIRECT.
            let plan = IOFaultPlan([.init(index: 0, kind: .open, fault: .error(.invalidArgument))])
            let engine = try IOEngine(configuration: Support.configuration(.posix), faultPlan: plan)
            let dir = try Support.tempDir()
            defer { Support.remove(dir) }
            let f = try engine.open("\(dir)/nodirect", mode: .readWrite(create: true, truncate: true), direct: true)
            #expect(!f.isDirect && f.directFallback)
            #expect(f.description.contains("direct refused"))
            let data = TestBytes([UInt8](repeating: 5, count: 10_000), misalign: 1)
            try await engine.write(f, at: 3, from: data.readOnly)
            let out = TestBytes(10_000)
            try await engine.read(f, at: 3, into: out.raw)
            #expect(out.array == data.array)
            try engine.close(f)
            #expect(throws: IOError.self) { try engine.close(f) }
            await engine.shutdown()
        }

        @Test func publicInitializerHonoursTheEnvironmentVariable() async throws {
            // Suites of this target run serialized, so changing the environment here is safe.
            setenv("CKPT_IO_BACKEND", "posix", 1)
            defer { unsetenv("CKPT_IO_BACKEND") }
            let engine = try IOEngine(configuration: .init(bufferSize: 4096, bufferCount: 1))
            #expect(engine.backend == .posix)
            #expect(engine.backendReason == "POSIX selected by CKPT_IO_BACKEND=posix")
            await engine.shutdown()
        }

        @Test func environmentSelectsTheBackend() async throws {
            let config = IOEngineConfiguration(backend: .automatic, bufferSize: 4096, bufferCount: 1)
            let posix = try IOEngine(configuration: config, faultPlan: .init(), environment: "posix")
            #expect(posix.backend == .posix)
            #expect(posix.backendReason.contains("CKPT_IO_BACKEND=posix"))
            await posix.shutdown()
            let explicit = try IOEngine(configuration: .init(backend: .posix, bufferSize: 4096, bufferCount: 1), faultPlan: .init(), environment: "uring")
            #expect(explicit.backend == .posix)
            await explicit.shutdown()
            #expect(throws: IOError.self) { _ = try IOEngine(configuration: config, faultPlan: .init(), environment: "bogus") }
            if let uring = try? IOEngine(configuration: config, faultPlan: .init(), environment: "uring") {
                #expect(uring.backend == .ioUring)
                #expect(uring.buffersRegistered || uring.bufferRegistrationReport.contains("failed"))
                await uring.shutdown()
            } else {
                print("SKIP io_uring environment check: the ring cannot be set up here")
            }
        }

        @Test func numaReportIsExplicit() throws {
            let pool = try IOBufferPool(bufferSize: 4096, count: 1, numaLocal: true)
            #expect(!pool.numaReport.isEmpty)
            if ckptNumaNodeCount() == 1 { #expect(pool.numaReport == "1 node: NUMA placement not needed") }
            let off = try IOBufferPool(bufferSize: 4096, count: 1, numaLocal: false)
            #expect(off.numaReport.contains("disabled"))
        }
    }
}

import CCkptURing
func ckptNumaNodeCount() -> Int { Int(ckpt_numa_node_count()) }

@Suite struct PreallocationTests {
    /// On a disk file system the file grows to the preallocated length (blocks read back as
    /// zeros); on tmpfs preallocation is skipped (it would only zero-fill pages).
    @Test func preallocatesOnDiskAndSkipsTmpfs() async throws {
        let engine = try IOEngine()
        for (directory, expected) in [("/var/tmp", true), ("/dev/shm", false)] {
            guard FileManager.default.fileExists(atPath: directory) else { continue }
            let path = directory + "/ckpt-prealloc-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            defer { unlink(path) }
            let file = try engine.open(path, mode: .write(create: true, truncate: true), direct: false)
            let done = try engine.preallocate(file, upTo: 1 << 20)
            let size = try engine.size(of: file)
            try engine.close(file)
            if expected {
                // Some disk file systems cannot preallocate; then nothing changes.
                #expect(done ? size == 1 << 20 : size == 0, "\(directory): preallocated \(done), size \(size)")
            } else {
                #expect(!done && size == 0, "\(directory): preallocated \(done), size \(size)")
            }
        }
        await engine.shutdown()
    }
}
