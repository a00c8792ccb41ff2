import CkptFormat
import CkptIO
import CkptPlan
import Foundation

/// The streaming path of a consolidation: the output is assembled in images from whole windows of
/// the data files (``StreamCopyPlanner``), so the device sees the reads and writes of a plain copy
/// however small the tensors and however many files they are spread over. Used for O_DIRECT
/// consolidations without checksum verification whose layout fits the buffer budget; the batch
/// path (``Consolidator/consolidate(_:to:format:overwrite:progress:)``) otherwise.
extension Consolidator {
    /// The output's byte layout: where each storage's bytes start, and the file's length.
    struct OutputLayout {
        var dataOffsets: [Int]
        var dataLengths: [Int]
        var length: Int
    }

    /// A streaming copy ready to run: its plan, the data files its file ids name, and the window
    /// buffers (as many image buffers).
    struct StreamSetup {
        var plan: StreamCopyPlan
        var files: [String]
        var windowBuffers: Int
    }

    /// Runs whose source is the checkpoint beyond this many fall back to the batch path (a column
    /// sharded checkpoint has a run per row of every shard; the plan holds them all).
    static let streamRunLimit = 4 << 20

    /// Window (and image) size: the engine's block (4 MiB by default, the largest request of
    /// common block devices) when the piece budget holds 16 of them, smaller otherwise.
    static func streamWindowSize(pieceBytes: Int, bufferSize: Int) -> Int {
        let alignment = RecordFileWriter.alignment
        let size = min(bufferSize, max(16 * alignment, pieceBytes / 16))
        return max(alignment, size / alignment * alignment)
    }

    /// Engine pool buffers the streaming path of a consolidation with `pieceBytes` uses: as many
    /// window buffers (reads ahead) as image buffers (writes in flight), each the piece budget
    /// over the window size. An engine whose pool has that many gives the copy memory that is
    /// resident and registered for fixed-buffer transfers (fresh memory costs its page faults and
    /// zeroing inside the copy: a third of its CPU time on the benchmark's virtual machine); with
    /// fewer, the rest is allocated.
    public static func streamPoolBuffers(pieceBytes: Int = 64 << 20, bufferSize: Int = 4 << 20) -> Int {
        2 * max(4, max(pieceBytes, 1 << 16) / streamWindowSize(pieceBytes: max(pieceBytes, 1 << 16), bufferSize: bufferSize))
    }

    /// The copy plan of the output, or nil when it needs more window buffers than the piece budget
    /// holds or too many runs (then the batch path runs).
    func streamPlan(
        reader: CheckpointReader, sources: [Source], layout: OutputLayout, metaBytes: [UInt8]
    ) async throws -> StreamSetup? {
        let located = try await reader.locatePayloads()
        var runs: [StreamCopyRun] = []
        for (j, source) in sources.enumerated() {
            switch source {
            case .meta(let range):
                runs.append(StreamCopyRun(
                    outputOffset: layout.dataOffsets[j], length: range.count, source: .literal(0, offset: range.lowerBound)))
            case .checkpoint(let fqn, let dtype, let shape):
                guard layout.dataLengths[j] > 0 else { continue }
                let request = TensorLoadRequest(
                    fqn: fqn, globalShape: shape, elementSize: dtype.itemSize, dtype: dtype.torchName,
                    localChunks: [LocalChunk(
                        box: ChunkBox(offsets: Array(repeating: 0, count: shape.count), sizes: shape), destination: 0,
                        baseOffset: layout.dataOffsets[j])])
                let plan: TensorOverlapPlan
                do {
                    plan = try LoadPlanner.planOverlaps(request, saved: reader.metadata.savedEntry(fqn))
                } catch {
                    throw CheckpointError(.corrupt, "consolidating '\(reader.directory)': \(error)", underlying: error)
                }
                for overlap in plan.overlaps {
                    guard let payload = located.chunks[fqn]?[overlap.savedChunk] else {
                        throw CheckpointError(.protocolViolation, "no payload located for '\(fqn)' chunk \(overlap.savedChunk)")
                    }
                    for run in LoadPlanner.copyRuns(for: overlap, in: plan, payload: payload) {
                        runs.append(StreamCopyRun(
                            outputOffset: run.destinationOffset, length: run.length, source: .file(run.file, offset: run.sourceOffset)))
                    }
                }
                if runs.count > Self.streamRunLimit { return nil }
            }
        }
        let window = Self.streamWindowSize(pieceBytes: pieceBytes, bufferSize: engine.buffers.bufferSize)
        let plan: StreamCopyPlan
        do {
            plan = try StreamCopyPlanner.plan(
                runs: runs, outputLength: layout.length, fileSizes: located.fileSizes, literalSizes: [metaBytes.count],
                windowSize: window, imageSize: window)
        } catch {
            throw CheckpointError(.corrupt, "consolidating '\(reader.directory)': \(error)", underlying: error)
        }
        let budget = max(4, pieceBytes / window)
        guard plan.peakLiveWindows <= budget else { return nil }
        return StreamSetup(plan: plan, files: located.files, windowBuffers: budget)
    }

    /// Writes the output through the stream plan into `file` (opened, preallocated) and trims it
    /// to its length. `glue` fills the bytes between storages (zip headers with the storages'
    /// CRC-32, a safetensors header). Returns the bytes of buffers allocated beyond the engine's
    /// pool.
    func runStream(
        _ stream: StreamSetup, reader: CheckpointReader,
        into file: IOFile, metaBytes: [UInt8], glue: inout OutputGlue, progress: ((Int) -> Void)?
    ) async throws -> Int {
        var files: [IOFile] = []
        defer { for f in files { try? engine.close(f) } }
        for name in stream.files {
            files.append(try engine.open(reader.directory + "/" + name, mode: .read, direct: true))
        }
        let copier = StreamCopier(
            engine: engine, plan: stream.plan, files: files, output: file, literals: [metaBytes],
            windowBuffers: stream.windowBuffers, imageBuffers: stream.windowBuffers)
        let allocated = try await copier.run(fill: { image, bytes in try glue.fill(image: image, bytes: bytes) }, progress: progress)
        try glue.finish()
        if try engine.size(of: file) != Int64(stream.plan.outputLength) {
            try engine.truncate(file, to: Int64(stream.plan.outputLength))
        }
        return allocated
    }
}
