import CkptIO
import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

/// `RecordFileWriter`'s writes straight from caller memory: where they happen, where they fall
/// back to copies, and when the caller may reuse the memory.
@Suite struct RecordFileWriterTests {
    static func pattern(_ count: Int, seed: UInt8) -> TensorBuffer {
        let buffer = TensorBuffer(uninitializedByteCount: count)
        for i in 0..<count { buffer.bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ Int(seed)) }
        return buffer
    }

    /// Pieces at aligned and unaligned file positions and memory offsets, larger and smaller than
    /// a batch (the engine's 64 KiB block): the file holds exactly the appended bytes.
    @Test(arguments: [false, true])
    func bufferAppendsWriteExactlyTheirBytes(direct: Bool) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let path = tmp.path + "/f"
        let file = try engine.open(path, mode: .write(create: true, truncate: true), direct: direct)
        let writer = RecordFileWriter(engine: engine, file: file)
        let source = Self.pattern(1 << 20, seed: 7)
        var expected: [UInt8] = []
        // (memory offset, length, bytes appended before it through the copying path)
        let pieces: [(Int, Int, Int)] = [
            (0, 200 << 10, 0), (4096, 64 << 10, 0), (8192, 5000, 0), (0, 3 << 16, 100), (12288, 4096 * 3 + 1, 3996),
            (64, 70_000, 0), (4096 * 7, 300 << 10, 0),
        ]
        for (offset, length, before) in pieces {
            let header = [UInt8](repeating: UInt8(before % 251), count: before)
            try await writer.append(header)
            expected += header
            try await writer.append(source, byteOffset: offset, count: length)
            expected += Array(source.bytes[offset..<(offset + length)])
        }
        let length = try await writer.finish()
        try await engine.fsync(file)
        try engine.close(file)
        #expect(length == expected.count)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == expected)
    }

    /// A piece written from caller memory may still sit in the writer's pending batch (not yet
    /// submitted); `waitForWrites(from:)` submits and awaits it, after which the caller may
    /// overwrite the memory without changing the file.
    @Test func memoryIsFreeAfterWaitForWrites() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let path = tmp.path + "/f"
        let file = try engine.open(path, mode: .write(create: true, truncate: true), direct: false)
        let writer = RecordFileWriter(engine: engine, file: file)
        let a = Self.pattern(16 << 10, seed: 1)
        let b = Self.pattern(16 << 10, seed: 2)
        try await writer.append(a, byteOffset: 0, count: 8192)  // smaller than a batch: pending
        try await writer.append(b, byteOffset: 4096, count: 8192)
        let original = Array(a.bytes[0..<8192]) + Array(b.bytes[4096..<12288])
        try await writer.waitForWrites(from: a)
        a.bytes.initializeMemory(as: UInt8.self, repeating: 0xEE)
        try await writer.waitForWrites(from: b)
        b.bytes.initializeMemory(as: UInt8.self, repeating: 0xDD)
        #expect(try await writer.finish() == original.count)
        try engine.close(file)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == original)
    }
}
