import CkptTestSupport
import Foundation
import Glibc
import Testing
@_spi(Testing) @testable import CkptIO

/// Every suite of this target is nested here and runs serialized, so the process-wide
/// open-descriptor count is a meaningful leak check.
@Suite(.serialized) enum SerialIOTests {}


/// Backend x mode combinations every behavioural test runs over.
struct Mode: Sendable, CustomTestStringConvertible {
    var backend: IOBackendKind
    var direct: Bool
    var testDescription: String { "\(backend) \(direct ? "O_DIRECT" : "buffered")" }

    static let all: [Mode] = [
        Mode(backend: .ioUring, direct: true), Mode(backend: .ioUring, direct: false),
        Mode(backend: .posix, direct: true), Mode(backend: .posix, direct: false),
    ]
}

enum Support {
    /// Small buffers keep tests fast while still splitting transfers into many blocks.
    static func configuration(_ backend: IOBackendKind, queueDepth: Int = 8, bufferSize: Int = 64 << 10, bufferCount: Int = 4)
        -> IOEngineConfiguration
    {
        IOEngineConfiguration(
            backend: backend == .ioUring ? .ioUring : .posix, queueDepth: queueDepth, bufferSize: bufferSize,
            bufferCount: bufferCount, registerBuffers: true, numaLocal: true, posixThreadCount: 3)
    }

    /// An engine for `backend`, or nil (with a message) when io_uring cannot be set up here.
    static func engine(
        _ backend: IOBackendKind, plan: IOFaultPlan = .init(), queueDepth: Int = 8, bufferSize: Int = 64 << 10,
        bufferCount: Int = 4
    ) throws -> IOEngine? {
        do {
            return try IOEngine(
                configuration: configuration(backend, queueDepth: queueDepth, bufferSize: bufferSize, bufferCount: bufferCount),
                faultPlan: plan)
        } catch let error as IOError where error.code == .backendUnavailable && plan.rules.isEmpty {
            print("SKIP io_uring test: the ring cannot be set up here: \(error.message)")
            return nil
        }
    }

    static func tempDir(_ name: String = #function) throws -> String {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let path = FileManager.default.temporaryDirectory.path + "/ckptio-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    /// Open descriptors on files of this target's temporary directories (`ckptio-*`). Other test
    /// targets run concurrently in the same process (Swift Testing runs suites in parallel) and
    /// open their own files and io_uring instances, so only this target's files are counted; ring
    /// descriptors are checked by `ringDescriptorsAreReleased`, which tolerates concurrent rings.
    static func openFDCount() -> Int {
        let prefix = FileManager.default.temporaryDirectory.path + "/ckptio-"
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.reduce(0) { count, fd in
            let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
            return count + (link.hasPrefix(prefix) ? 1 : 0)
        }
    }

    /// Open io_uring instances of the whole process.
    static func ringDescriptorCount() -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.reduce(0) { count, fd in
            let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
            return count + (link.contains("io_uring") ? 1 : 0)
        }
    }

    static func randomBytes(_ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var i = 0
            while i + 8 <= count {
                raw.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < count {
                raw[i] = UInt8(truncatingIfNeeded: rng.next())
                i += 1
            }
        }
        return out
    }

    /// Runs `body` and records an issue if it takes longer than `seconds`.
    @discardableResult
    static func timed<T>(_ seconds: Double, _ what: String, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        let value = try await body()
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .seconds(seconds), "\(what) took \(elapsed)")
        return value
    }
}

/// Test memory with a chosen alignment: `misalign == 0` gives 4096-aligned memory (O_DIRECT can
/// use it directly), anything else memory that the engine must stage.
final class TestBytes: @unchecked Sendable {
    let base: UnsafeMutableRawPointer?
    let raw: UnsafeMutableRawBufferPointer
    init(_ count: Int, misalign: Int = 0) {
        var p: UnsafeMutableRawPointer?
        _ = posix_memalign(&p, 4096, count + misalign + 1)
        base = p
        raw = UnsafeMutableRawBufferPointer(start: p.map { $0 + misalign }, count: count)
        if let p { memset(p, 0, count + misalign + 1) }
    }
    convenience init(_ bytes: [UInt8], misalign: Int = 0) {
        self.init(bytes.count, misalign: misalign)
        bytes.withUnsafeBytes { raw.copyMemory(from: $0) }
    }
    var readOnly: UnsafeRawBufferPointer { UnsafeRawBufferPointer(raw) }
    func slice(_ r: Range<Int>) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: raw[r]) }
    var array: [UInt8] { Array(raw) }
    deinit { free(base) }
}
