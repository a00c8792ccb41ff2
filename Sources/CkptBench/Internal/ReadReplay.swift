import Ckpt
import CkptIO

/// Replays a load's data reads (``LoadReport/dataReads``) against the raw device: the same files,
/// offsets and lengths, in the same order, at most the engine's queue depth at a time (as the
/// load's pipeline runs them), into the rank's own tensor memory, nothing decoded or copied. It
/// tells what the device gives this load's request pattern, which for a resharded load (part of
/// every record, so more and smaller requests than a plain sequential read) is less than the
/// probe's 4 MiB reads.
enum ReadReplay {
    /// Runs `reads` of the data files in `directory` on `engine`, landing them in `memory`
    /// (rotating through it; a read larger than `memory` gets memory of its own).
    static func run(_ reads: [LoadRead], directory: String, engine: IOEngine, memory: TensorBuffer, direct: Bool) async throws {
        var files: [String: IOFile] = [:]
        defer { for file in files.values { try? engine.close(file) } }
        for name in Set(reads.map(\.file)) {
            files[name] = try engine.open(directory + "/" + name, mode: .read, direct: direct)
        }
        let window = max(2, engine.configuration.queueDepth)
        let alignment = TensorBuffer.alignment
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            var running = 0
            var cursor = 0
            while next < reads.count || running > 0 {
                while next < reads.count, running < window {
                    let read = reads[next]
                    guard let file = files[read.file] else {
                        throw BenchRunError.scenarioFailed(scenario: "read replay", underlying: "'\(read.file)' was not opened")
                    }
                    let target: TensorBuffer
                    let at: Int
                    if read.length > memory.bytes.count {
                        target = TensorBuffer(uninitializedByteCount: read.length)
                        at = 0
                    } else {
                        if cursor + read.length > memory.bytes.count { cursor = 0 }
                        target = memory
                        at = cursor
                        cursor = (cursor + read.length + alignment - 1) / alignment * alignment
                    }
                    group.addTask {
                        try await engine.read(
                            file, at: Int64(read.offset),
                            into: UnsafeMutableRawBufferPointer(rebasing: target.bytes[at..<(at + read.length)]))
                    }
                    next += 1
                    running += 1
                }
                if try await group.next() != nil { running -= 1 }
            }
        }
    }
}
