import CCkptHash
import CkptFormat
import CkptIO
import CkptPlan
import Foundation

/// One entry of a checkpoint the tools write (reshard, convert), in state-dict order.
enum PlannedEntry {
    /// A tensor and, per target chunk, the rank that writes it.
    case tensor(fqn: String, dtype: DType, shape: [Int], chunks: [PlannedChunk])
    /// A non-tensor value: a complete BYTE_IO record (written by rank 0).
    case value(fqn: String, record: [UInt8])

    var fqn: String {
        switch self {
        case .tensor(let fqn, _, _, _), .value(let fqn, _): return fqn
        }
    }
}

/// A chunk of the written checkpoint.
struct PlannedChunk: Equatable {
    var rank: Int
    var offsets: [Int]
    var sizes: [Int]
}

/// The whole layout of a checkpoint to write.
struct OutputPlan {
    var ranks: Int
    var entries: [PlannedEntry]
    /// fqn -> original state-dict path.
    var plannerData: OrderedMap<String, [PlannerPathElement]>
}

/// Fills `buffer[0..<n]` with the C-order bytes of the block (`offsets`, `sizes` in global
/// coordinates) of tensor `fqn`.
typealias BlockFiller = @Sendable (_ fqn: String, _ dtype: DType, _ shape: [Int], _ offsets: [Int], _ sizes: [Int], _ buffer: TensorBuffer) async throws -> Void

/// Fills several blocks into one buffer (a reader loads them in one pipeline).
typealias BatchFiller = @Sendable (_ blocks: [BlockRequest], _ buffer: TensorBuffer) async throws -> Void

/// A batch filler that fills block by block.
func batchFiller(_ fill: @escaping BlockFiller) -> BatchFiller {
    { blocks, buffer in
        for block in blocks {
            let view = TensorBuffer(borrowing: UnsafeMutableRawBufferPointer(
                rebasing: buffer.bytes[block.byteOffset..<(block.byteOffset + block.byteCount)]))
            try await fill(block.fqn, block.dtype, block.shape, block.offsets, block.sizes, view)
        }
    }
}

/// Writes a DCP checkpoint record by record from a plan, streaming every tensor chunk through one
/// piece buffer, so memory is bounded by the piece plus the engine's pool whatever the size.
///
/// The checkpoint is built in a temporary directory next to `output` and committed as the engine
/// commits a save (data files fsynced, checksum sidecar, `.metadata` tmp + fsync + rename,
/// directory fsync), then the temporary directory is renamed to `output` and the parent fsynced.
/// On failure the temporary directory is removed: nothing is left under the output name.
struct ShardedCheckpointWriter {
    let engine: IOEngine
    let pieceBytes: Int
    let writeChecksums: Bool

    struct Summary {
        var files: [String]
        var fileBytes: Int
        var tensorBytes: Int
        var records: Int
    }

    func write(
        _ plan: OutputPlan, to output: String, overwrite: Bool, fill: @escaping BatchFiller,
        progress: ToolProgress?
    ) async throws -> Summary {
        let fm = FileManager.default
        let output = ToolPaths.normalized(output)
        if fm.fileExists(atPath: output), !overwrite {
            throw CheckpointError(.invalidArgument, "output '\(output)' already exists (pass --overwrite to replace it)")
        }
        let parent = ToolPaths.parent(of: output)
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CheckpointError(.invalidArgument, "output directory '\(parent)' does not exist")
        }
        let temporary = output + ".ckpt-tmp-\(getpid())"
        try? fm.removeItem(atPath: temporary)
        do {
            try fm.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        } catch {
            throw CheckpointError(.io, "cannot create '\(temporary)': \(ToolError.oneLine(error))", underlying: error)
        }
        do {
            let summary = try await writeAll(plan, into: temporary, final: output, fill: fill, progress: progress)
            if fm.fileExists(atPath: output) {
                // --overwrite: move the old one aside, put the new one in place, then delete the old.
                let old = output + ".ckpt-old-\(getpid())"
                guard rename(output, old) == 0 else {
                    throw CheckpointError(.io, "cannot move '\(output)' aside: \(String(cString: strerror(errno)))")
                }
                guard rename(temporary, output) == 0 else {
                    let message = String(cString: strerror(errno))
                    _ = rename(old, output)
                    throw CheckpointError(.io, "cannot rename '\(temporary)' to '\(output)': \(message)")
                }
                try? fm.removeItem(atPath: old)
            } else {
                guard rename(temporary, output) == 0 else {
                    throw CheckpointError(.io, "cannot rename '\(temporary)' to '\(output)': \(String(cString: strerror(errno)))")
                }
            }
            try engine.syncDirectory(parent)
            return summary
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw error
        }
    }

    private struct Written {
        var file: String
        var offset: Int
        var length: Int
        var payloadOffset: Int
        var payloadLength: Int
        var xxh3: UInt64
    }

    private func writeAll(
        _ plan: OutputPlan, into directory: String, final: String, fill: @escaping BatchFiller, progress: ToolProgress?
    ) async throws -> Summary {
        guard plan.ranks >= 1 else { throw CheckpointError(.invalidArgument, "the number of ranks must be at least 1") }
        let totalBytes = plan.entries.reduce(0) { total, entry in
            guard case .tensor(_, let dtype, _, let chunks) = entry else { return total }
            return total + chunks.reduce(0) { $0 + $1.sizes.reduce(1, *) * dtype.itemSize }
        }
        var done = 0
        // (entry index, chunk index or -1 for a value) -> record.
        var written: [Int: [Int: Written]] = [:]
        var summary = Summary(files: [], fileBytes: 0, tensorBytes: totalBytes, records: 0)
        // The piece in slots: up to `slots - 1` batches of blocks load ahead while one is written.
        let slotBytes = max(pieceBytes / Self.slots, 1 << 15)
        let buffers = (0..<Self.slots).map { _ in TensorBuffer(uninitializedByteCount: slotBytes) }
        // Files are written one after the other and fsynced together at the end (the device
        // flushes them concurrently instead of one fsync per file on the critical path).
        var open: [IOFile] = []
        do {
            for rank in 0..<plan.ranks {
                let name = "__\(rank)_0.distcp"
                let file = try engine.open(directory + "/" + name, mode: .write(create: true, truncate: true), direct: true)
                open.append(file)
                let out = RecordFileWriter(engine: engine, file: file)
                // Half the pool for writes in flight; the loads' staged reads use the rest.
                out.stagingWritesInFlight = max(2, engine.buffers.bufferCount / 2)
                do {
                    if rank == 0 {
                        for (index, entry) in plan.entries.enumerated() {
                            guard case .value(_, let record) = entry else { continue }
                            let offset = out.position
                            let hash = record.withUnsafeBytes { ckpt_xxh3_64($0.baseAddress, $0.count) }
                            try await out.append(record)
                            written[index, default: [:]][-1] = Written(
                                file: name, offset: offset, length: record.count, payloadOffset: offset,
                                payloadLength: record.count, xxh3: hash)
                        }
                    }
                    let loader = BatchLoader(plan: plan, rank: rank, buffers: buffers, fill: fill)
                    do {
                        for (index, entry) in plan.entries.enumerated() {
                            guard case .tensor(let fqn, let dtype, _, let chunks) = entry else { continue }
                            for (c, chunk) in chunks.enumerated() where chunk.rank == rank {
                                let record = try await writeChunk(
                                    fqn: fqn, dtype: dtype, chunk: chunk, file: name, out: out, loader: loader) { n in
                                        done += n
                                        progress?.update(done: done, total: totalBytes)
                                    }
                                written[index, default: [:]][c] = record
                            }
                        }
                    } catch {
                        await loader.abandon()
                        throw error
                    }
                    summary.fileBytes += try await out.finish()
                    summary.files.append(name)
                } catch {
                    await out.abandon()
                    throw error
                }
            }
            try await engine.perform(open.map { IORequest.fsync($0) })
            while let file = open.popLast() { try engine.close(file) }
        } catch {
            for file in open { try? engine.close(file) }
            throw error
        }

        // Metadata and sidecar.
        let saveID = UUID().uuidString.lowercased()
        var stateDictMetadata = OrderedMap<String, StorageMetadata>()
        var storageData = OrderedMap<MetadataIndex, StorageInfo>()
        var sidecar = ChecksumSidecar(saveID: saveID)
        for (index, entry) in plan.entries.enumerated() {
            switch entry {
            case .value(let fqn, _):
                guard let record = written[index]?[-1] else {
                    throw CheckpointError(.protocolViolation, "value '\(fqn)' was not written")
                }
                stateDictMetadata[fqn] = .bytes
                storageData[MetadataIndex(fqn: fqn, offset: nil, index: nil)] = StorageInfo(
                    relativePath: record.file, offset: record.offset, length: record.length)
                sidecar.entries.append(Self.sidecarEntry(record, fqn: fqn, offsets: nil))
                summary.records += 1
            case .tensor(let fqn, let dtype, let shape, let chunks):
                var saved: [ChunkStorageMetadata] = []
                for (c, chunk) in chunks.enumerated() {
                    guard let record = written[index]?[c] else {
                        throw CheckpointError(.protocolViolation, "chunk \(chunk.offsets) of '\(fqn)' was not written")
                    }
                    saved.append(ChunkStorageMetadata(offsets: chunk.offsets, sizes: chunk.sizes))
                    storageData[MetadataIndex(fqn: fqn, offset: chunk.offsets, index: c)] = StorageInfo(
                        relativePath: record.file, offset: record.offset, length: record.length)
                    sidecar.entries.append(Self.sidecarEntry(record, fqn: fqn, offsets: chunk.offsets))
                    summary.records += 1
                }
                let properties = TensorProperties(
                    dtype: dtype, layout: "torch.strided", requiresGrad: false, memoryFormat: 0, pinMemory: false,
                    strides: contiguousStrides(chunks.first?.sizes ?? shape))
                stateDictMetadata[fqn] = .tensor(TensorStorageMetadata(properties: properties, size: shape, chunks: saved))
            }
        }
        let metadata = DCPMetadata(
            stateDictMetadata: stateDictMetadata, plannerData: plan.plannerData, storageData: storageData,
            storageMeta: StorageMeta(
                checkpointID: .path(className: "PosixPath", components: SaveCoordinator.pathComponents(ToolPaths.absolute(final))),
                saveID: saveID, loadID: nil, modules: []),
            version: "1.0.0")
        let encoded = metadata.encoded()
        try await SaveCoordinator.writeCommitFiles(
            metadata: (metadata, encoded), sidecar: writeChecksums ? (sidecar, try sidecar.encoded()) : nil,
            directory: directory, engine: engine)
        let temporary = directory + "/" + Checkpointer.metadataFileName + ".tmp"
        guard rename(temporary, directory + "/" + Checkpointer.metadataFileName) == 0 else {
            throw CheckpointError(.io, "cannot rename '\(temporary)': \(String(cString: strerror(errno)))")
        }
        try engine.syncDirectory(directory)
        return summary
    }

    private static func sidecarEntry(_ w: Written, fqn: String, offsets: [Int]?) -> ChecksumSidecar.Entry {
        ChecksumSidecar.Entry(
            record: WriteResultMessage.Record(
                item: 0, file: w.file, offset: w.offset, length: w.length, payloadOffset: w.payloadOffset,
                payloadLength: w.payloadLength, xxh3: w.xxh3),
            fqn: fqn, offsets: offsets)
    }

    /// Buffers the piece is split into (batches loading ahead: one less).
    static let slots = 4

    /// One torch.save record: prefix, the payload block by block as its batches load, suffix with
    /// the payload's CRC-32.
    private func writeChunk(
        fqn: String, dtype: DType, chunk: PlannedChunk, file: String, out: RecordFileWriter,
        loader: BatchLoader, advanced: (Int) -> Void
    ) async throws -> Written {
        let count = chunk.sizes.reduce(1, *) * dtype.itemSize
        let head: RecordLayout
        do {
            head = try TorchTensorRecord.layout(dtype: dtype, shape: chunk.sizes, payloadCRC32: 0, alignment: 64)
        } catch {
            throw CheckpointError(.invalidArgument, "'\(fqn)' chunk \(chunk.offsets): \(error)", underlying: error)
        }
        let offset = out.position
        try await out.append(head.prefix)
        var crc: UInt32 = 0
        let hasher = try StreamingXXH3()
        if count > 0 {
            for _ in Self.blocks(chunk, dtype: dtype, maxBytes: loader.slotBytes) {
                let bytes = try await loader.next()
                crc = ckpt_crc32_update(crc, bytes.baseAddress, bytes.count)
                hasher.update(bytes)
                try await out.append(bytes)
                advanced(bytes.count)
            }
        }
        let tail: RecordLayout
        do {
            tail = try TorchTensorRecord.layout(dtype: dtype, shape: chunk.sizes, payloadCRC32: count == 0 ? 0 : crc, alignment: 64)
        } catch {
            throw CheckpointError(.invalidArgument, "'\(fqn)' chunk \(chunk.offsets): \(error)", underlying: error)
        }
        try await out.append(tail.suffix)
        return Written(
            file: file, offset: offset, length: tail.recordLength, payloadOffset: offset + tail.payloadOffset,
            payloadLength: count, xxh3: count == 0 ? 0 : hasher.digest())
    }
}

extension ShardedCheckpointWriter {
    /// The non-empty blocks a chunk's payload is written in (local coordinates), in C order.
    static func blocks(_ chunk: PlannedChunk, dtype: DType, maxBytes: Int) -> [(offsets: [Int], sizes: [Int])] {
        guard chunk.sizes.reduce(dtype.itemSize, *) > 0 else { return [] }
        return Consolidator.blocks(shape: chunk.sizes, elementSize: dtype.itemSize, maxBytes: maxBytes)
            .filter { $0.sizes.reduce(dtype.itemSize, *) > 0 }
    }
}

/// Streaming XXH3-64 (frees its C state on deinit).
final class StreamingXXH3 {
    private let state: OpaquePointer

    init() throws {
        guard let state = ckpt_xxh3_create() else {
            throw CheckpointError(.io, "cannot allocate an XXH3 state")
        }
        self.state = state
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        ckpt_xxh3_update(state, base, bytes.count)
    }

    func digest() -> UInt64 { ckpt_xxh3_digest(state) }

    deinit { ckpt_xxh3_free(state) }
}
