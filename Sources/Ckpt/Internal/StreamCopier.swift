import CkptIO
import CkptPlan

/// Runs a ``StreamCopyPlan``: reads its windows in order into a fixed set of buffers (a window's
/// buffer is reused once the last image that needs it is assembled), assembles each image by
/// copying its pieces, lets the caller fill the rest (headers, checksums), and writes it with
/// the next images' reads and earlier images' writes in flight. The device sees one read per
/// window and one write per image, as in a plain copy of one file into another.
struct StreamCopier {
    let engine: IOEngine
    let plan: StreamCopyPlan
    /// Opened data files, by the plan's file ids.
    let files: [IOFile]
    let output: IOFile
    /// The plan's literals, by id.
    let literals: [[UInt8]]
    /// Window buffers: at least the plan's `peakLiveWindows`; more read further ahead.
    let windowBuffers: Int
    /// Image buffers: writes in flight.
    let imageBuffers: Int

    static let alignment = RecordFileWriter.alignment

    /// Copies the plan. `fill` gets each image in output order once its pieces are copied, with
    /// the image's bytes (bytes no piece covers are zero); it writes what is not copied (headers,
    /// checksums of what is). `progress` gets the output bytes done. Returns the bytes of buffers
    /// it allocated (beyond the engine's pool buffers it borrowed).
    @discardableResult
    func run(
        fill: (_ image: StreamCopyPlan.Image, _ bytes: UnsafeMutableRawBufferPointer) throws -> Void,
        progress: ((Int) -> Void)? = nil
    ) async throws -> Int {
        guard windowBuffers >= max(1, plan.peakLiveWindows), imageBuffers >= 1 else {
            throw CheckpointError(
                .invalidArgument,
                "internal error: \(windowBuffers) window buffers for a copy that needs \(plan.peakLiveWindows) at once")
        }
        let engine = self.engine, output = self.output
        // The engine's pool buffers where it has them (resident, and registered for fixed-buffer
        // transfers: fresh memory costs its page faults and zeroing in the copy), allocated
        // memory for the rest.
        var lent: [IOBuffer] = []
        defer { for buffer in lent { engine.buffers.release(buffer) } }
        var allocated = 0
        func memory(_ count: Int, _ size: Int) -> [TensorBuffer] {
            (0..<count).map { _ in
                if engine.buffers.bufferSize >= size, let buffer = engine.buffers.tryAcquire() {
                    lent.append(buffer)
                    return TensorBuffer(borrowing: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[0..<size]))
                }
                allocated += size
                return TensorBuffer(uninitializedByteCount: size)
            }
        }
        let imageMemory = memory(min(imageBuffers, max(1, plan.images.count)), plan.imageSize)
        let windowMemory = memory(min(windowBuffers, max(1, plan.windows.count)), plan.windowSize)
        var free = Array(windowMemory.indices.reversed())
        var slot = [Int](repeating: -1, count: plan.windows.count)
        var reads: [Int: Task<Void, any Error>] = [:]
        var writes: [Task<Void, any Error>?] = Array(repeating: nil, count: imageMemory.count)
        var next = 0

        do {
            for (k, image) in plan.images.enumerated() {
                // Every free buffer reads the next window (in the order images first need them).
                while next < plan.windows.count, let b = free.popLast() {
                    let window = plan.windows[next]
                    let file = files[window.file]
                    let memory = windowMemory[b]
                    slot[next] = b
                    reads[next] = Task {
                        do {
                            try await engine.read(
                                file, at: Int64(window.offset),
                                into: UnsafeMutableRawBufferPointer(rebasing: memory.bytes[0..<window.length]))
                        } catch {
                            throw CheckpointError(
                                .io, "reading \(window.length) bytes of '\(file.path)' at offset \(window.offset)", underlying: error)
                        }
                    }
                    next += 1
                }
                let memory = imageMemory[k % imageMemory.count]
                if let previous = writes[k % imageMemory.count] {
                    writes[k % imageMemory.count] = nil
                    try await previous.value
                }
                let bytes = UnsafeMutableRawBufferPointer(rebasing: memory.bytes[0..<image.length])
                var covered = 0
                for piece in image.pieces {
                    if piece.imageOffset > covered {
                        UnsafeMutableRawBufferPointer(rebasing: bytes[covered..<piece.imageOffset]).initializeMemory(as: UInt8.self, repeating: 0)
                    }
                    let target = UnsafeMutableRawBufferPointer(rebasing: bytes[piece.imageOffset..<(piece.imageOffset + piece.length)])
                    switch piece.source {
                    case .window(let w, let offset):
                        if let read = reads.removeValue(forKey: w) { try await read.value }
                        target.copyMemory(from: UnsafeRawBufferPointer(rebasing: windowMemory[slot[w]].bytes[offset..<(offset + piece.length)]))
                    case .literal(let l, let offset):
                        literals[l].withUnsafeBytes { target.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + piece.length)])) }
                    }
                    covered = piece.imageOffset + piece.length
                }
                if image.length > covered {
                    UnsafeMutableRawBufferPointer(rebasing: bytes[covered...]).initializeMemory(as: UInt8.self, repeating: 0)
                }
                try fill(image, bytes)
                // The last image is padded to the alignment (the file is trimmed afterwards).
                let padded = (image.length + Self.alignment - 1) / Self.alignment * Self.alignment
                if padded > image.length {
                    UnsafeMutableRawBufferPointer(rebasing: memory.bytes[image.length..<padded]).initializeMemory(as: UInt8.self, repeating: 0)
                }
                writes[k % imageMemory.count] = Task {
                    do {
                        try await engine.write(output, at: Int64(image.offset), from: UnsafeRawBufferPointer(rebasing: memory.bytes[0..<padded]))
                    } catch {
                        throw CheckpointError(.io, "writing \(padded) bytes of '\(output.path)' at offset \(image.offset)", underlying: error)
                    }
                }
                for w in image.releases { free.append(slot[w]) }
                progress?(image.offset + image.length)
            }
            for (i, write) in writes.enumerated() {
                writes[i] = nil
                try await write?.value
            }
            return allocated
        } catch {
            // Transfers still running use the buffers and the files: let them settle first.
            for (_, read) in reads { _ = try? await read.value }
            for write in writes { _ = try? await write?.value }
            throw error
        }
    }
}
