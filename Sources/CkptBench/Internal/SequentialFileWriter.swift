import CkptIO

/// Streams bytes to one file through the engine's pool buffers with only 4096-aligned transfers
/// (so it works on O_DIRECT files): bytes are copied into a staging buffer, which is written
/// asynchronously once full while the next one fills (at most `maxInFlight` in flight). The
/// last block is padded, then the file is truncated back to the logical length.
///
/// This is how a single-file `torch.save` reaches the disk: one sequential stream, every byte
/// copied once into the writer's buffer.
final class SequentialFileWriter {
    let engine: IOEngine
    let file: IOFile
    private let maxInFlight: Int
    private static let alignment = 4096

    /// Logical length written so far.
    private(set) var position = 0
    private var staging: IOBuffer?
    private var fill = 0
    private var stagingStart = 0
    private var inFlight: [(task: Task<Void, any Error>, buffer: IOBuffer)] = []

    init(engine: IOEngine, file: IOFile, maxInFlight: Int = 4) {
        self.engine = engine
        self.file = file
        self.maxInFlight = max(1, min(maxInFlight, engine.buffers.bufferCount - 1))
    }

    /// Copies `bytes` to the end of the file.
    func append(_ bytes: [UInt8]) async throws {
        var done = 0
        while done < bytes.count {
            let buffer = try await currentStaging()
            let n = min(buffer.bytes.count - fill, bytes.count - done)
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[fill..<(fill + n)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[done..<(done + n)]))
            }
            fill += n
            done += n
            position += n
            if fill == buffer.bytes.count { try flushStaging() }
        }
    }

    /// Copies `bytes` to the end of the file.
    func append(_ bytes: UnsafeRawBufferPointer) async throws {
        var done = 0
        while done < bytes.count {
            let buffer = try await currentStaging()
            let n = min(buffer.bytes.count - fill, bytes.count - done)
            UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[fill..<(fill + n)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[done..<(done + n)]))
            fill += n
            done += n
            position += n
            if fill == buffer.bytes.count { try flushStaging() }
        }
    }

    /// Writes the rest, waits for every transfer, truncates to the logical length and fsyncs.
    /// Returns the file length.
    func finish() async throws -> Int {
        try flushStaging()
        try await drain()
        if try engine.size(of: file) != Int64(position) {
            try engine.truncate(file, to: Int64(position))
        }
        try await engine.fsync(file)
        return position
    }

    /// Waits for transfers in flight and gives every buffer back (after a failure).
    func abandon() async {
        for entry in inFlight {
            _ = try? await entry.task.value
            engine.buffers.release(entry.buffer)
        }
        inFlight.removeAll()
        if let staging { engine.buffers.release(staging) }
        staging = nil
    }

    private func currentStaging() async throws -> IOBuffer {
        if let staging { return staging }
        if inFlight.count >= maxInFlight {
            let oldest = inFlight.removeFirst()
            defer { engine.buffers.release(oldest.buffer) }
            try await oldest.task.value
        }
        let buffer = try await engine.buffers.acquire()
        staging = buffer
        return buffer
    }

    /// Starts the write of the staging buffer (padded with zeros to the alignment). Only called
    /// when the buffer is full or at the end, so every write starts at an aligned offset.
    private func flushStaging() throws {
        guard let buffer = staging else { return }
        staging = nil
        guard fill > 0 else {
            engine.buffers.release(buffer)
            return
        }
        let padded = (fill + Self.alignment - 1) / Self.alignment * Self.alignment
        if padded > fill {
            UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[fill..<padded]).initializeMemory(as: UInt8.self, repeating: 0)
        }
        let at = Int64(stagingStart)
        let engine = self.engine, file = self.file
        let task = Task {
            try await engine.write(file, at: at, from: UnsafeRawBufferPointer(rebasing: buffer.bytes[..<padded]))
        }
        inFlight.append((task, buffer))
        stagingStart += fill
        fill = 0
    }

    private func drain() async throws {
        var firstError: (any Error)?
        for entry in inFlight {
            do { try await entry.task.value } catch { if firstError == nil { firstError = error } }
            engine.buffers.release(entry.buffer)
        }
        inFlight.removeAll()
        if let firstError { throw firstError }
    }
}
