public import CkptIO
import CkptFormat
import CkptPlan
import Foundation
import Synchronization

/// Saves and loads PyTorch DCP checkpoints from the ranks of a training job.
///
/// Every rank creates its own `Checkpointer` with its ``Communicator`` and calls the same
/// collectives (``save(_:to:)``, ``load(into:from:)``, ``saveAsync(_:to:)``) in the same order.
/// Rank 0 coordinates: it plans the save, writes `.metadata` and commits.
///
/// Memory: besides the state itself, a save or load holds at most the I/O engine's buffer pool
/// (its `bufferSize * bufferCount`, 64 MiB by default) plus small plans; ``saveAsync(_:to:)``
/// also holds a staged copy of the rank's shard until the save commits.
public final class Checkpointer: Sendable {
    public let engine: IOEngine
    public let communicator: any Communicator
    public let options: CheckpointOptions
    let asyncState = Mutex<AsyncSaveState>(AsyncSaveState())

    /// Name of the sidecar file holding per-record XXH3-64 checksums (PyTorch ignores it).
    public static let checksumFileName = ".ckpt-checksums.json"
    /// Name of the committed metadata file.
    public static let metadataFileName = ".metadata"

    public init(engine: IOEngine, communicator: any Communicator, options: CheckpointOptions = CheckpointOptions()) {
        self.engine = engine
        self.communicator = communicator
        self.options = options
    }

    var rank: Int { communicator.rank }
    var isCoordinator: Bool { communicator.rank == 0 }

    // MARK: - Save

    /// Saves `state` as a DCP checkpoint in `directory` (a collective). Returns once the checkpoint
    /// is committed: every data file fsynced, `.metadata` written, fsynced and renamed into place,
    /// the directory fsynced. Throws on every rank if any rank fails; then no `.metadata` is
    /// committed.
    public func save(_ state: StateDict, to directory: String) async throws -> SaveReport {
        let clock = ContinuousClock()
        let start = clock.now
        engine.buffers.resetPeak()

        // 1. Local plan -> coordinator.
        var local = LocalPlanMessage()
        var localError: (any Error)?
        do {
            local = try Self.localPlan(state)
        } catch {
            localError = error
            local = LocalPlanMessage(error: "rank \(rank): \(error)")
        }
        let localBytes = Wire.encode(local, capacity: 64 + local.items.count * 48)
        let gathered = try await communicator.gather(localBytes, root: 0)

        // 2. Coordinator: global plan -> everyone.
        var coordinator: SaveCoordinator?
        var planBytes: [UInt8]?
        if let gathered {
            let plans = try gathered.map { bytes throws(CheckpointError) in try Wire.decode(LocalPlanMessage.self, bytes) }
            let made = SaveCoordinator.make(plans: plans, directory: directory, options: options)
            coordinator = made.coordinator
            planBytes = Wire.encode(made.message, capacity: 1024)
        }
        let globalBytes = try await communicator.broadcast(planBytes, root: 0)
        // A plan this rank cannot use fails its write (reported to rank 0), so no rank waits forever.
        var global = GlobalPlanMessage(directory: "", saveID: "", files: [])
        var planError: (any Error)?
        do {
            global = try Wire.decode(GlobalPlanMessage.self, globalBytes)
            try Self.check(global, rank: rank, itemCount: local.items.count)
        } catch {
            planError = error
        }
        if let localError { throw localError }
        if let error = global.error { throw CheckpointError(.aborted, "save to \(directory) aborted: \(error)") }
        let planned = clock.now

        // 3. Write this rank's files.
        var result = WriteResultMessage()
        var written = (files: [String](), payload: 0, total: 0)
        var writeError: (any Error)?
        do {
            if let planError { throw planError }
            let out = try await writeFiles(global.files[rank], items: local.items, state: state, directory: global.directory)
            result.records = out.records
            written = (out.files, out.payload, out.total)
        } catch {
            writeError = error
            result = WriteResultMessage(error: "rank \(rank): \(error)")
        }
        let wrote = clock.now
        let resultBytes = Wire.encode(result, capacity: 64 + result.records.count * 40)
        // Rank 0 prepares the commit while it waits for the other ranks' results.
        async let prepared = Self.prepareCommit(coordinator)
        let results = try await communicator.gather(resultBytes, root: 0)

        // 4. Coordinator commits.
        var outcome = OutcomeMessage()
        if let results, let coordinator {
            do {
                let messages = try results.map { bytes throws(CheckpointError) in try Wire.decode(WriteResultMessage.self, bytes) }
                if let failed = messages.first(where: { $0.error != nil }), let error = failed.error {
                    outcome.error = error
                } else {
                    guard let preparing = await prepared else {
                        throw CheckpointError(.protocolViolation, "rank 0 has no prepared commit")
                    }
                    try await coordinator.commit(
                        results: messages, prepared: try preparing.get(), engine: engine, options: options)
                }
            } catch {
                outcome.error = "rank 0 commit: \(error)"
            }
            if outcome.error != nil { coordinator.discardStaging() }
        }
        let final = try Wire.decode(
            OutcomeMessage.self, try await communicator.broadcast(isCoordinator ? Wire.encode(outcome) : nil, root: 0))
        if let writeError { throw writeError }
        if let error = final.error { throw CheckpointError(.aborted, "save to \(directory) not committed: \(error)") }
        let end = clock.now
        return SaveReport(
            directory: directory, files: written.files, payloadBytes: written.payload, fileBytes: written.total,
            peakBufferBytes: engine.buffers.peakHeldBytes,
            planSeconds: (planned - start).seconds, writeSeconds: (wrote - planned).seconds,
            commitSeconds: (end - wrote).seconds)
    }

    /// Rank 0's commit preparation (nil elsewhere), run concurrently with the results gather.
    static func prepareCommit(_ coordinator: SaveCoordinator?) async -> Result<SaveCoordinator.PreparedCommit, any Error>? {
        guard let coordinator else { return nil }
        return Result { try coordinator.prepareCommit() }
    }

    /// Checks that the global plan gives this rank files of its own items.
    static func check(_ global: GlobalPlanMessage, rank: Int, itemCount: Int) throws(CheckpointError) {
        guard global.error == nil else { return }
        guard rank < global.files.count else {
            throw CheckpointError(.protocolViolation, "global plan has \(global.files.count) ranks, this is rank \(rank)")
        }
        for file in global.files[rank] {
            guard file.items.allSatisfy({ (0..<itemCount).contains($0) }) else {
                throw CheckpointError(
                    .protocolViolation,
                    "global plan asks rank \(rank) to write items \(file.items) to '\(file.name)', it has \(itemCount) items")
            }
        }
    }

    /// This rank's items in state-dict order: one per tensor chunk, one per value.
    static func localPlan(_ state: StateDict) throws -> LocalPlanMessage {
        var message = LocalPlanMessage()
        for entry in state.entries {
            message.paths.append(PathMessage(fqn: entry.fqn, path: entry.path))
            switch entry.value {
            case .tensor(let tensor):
                for chunk in tensor.chunks {
                    try validate(chunk, of: tensor, fqn: entry.fqn)
                    message.items.append(.init(
                        fqn: entry.fqn, dtype: tensor.dtype.torchName, elementSize: tensor.dtype.itemSize,
                        globalShape: tensor.globalShape, offsets: chunk.offsets, sizes: chunk.sizes))
                }
            case .value:
                message.items.append(.init(fqn: entry.fqn, estimatedSize: 1))
            }
        }
        return message
    }

    static func validate(_ chunk: TensorChunk, of tensor: TensorEntry, fqn: String) throws {
        guard chunk.offsets.count == tensor.globalShape.count, chunk.sizes.count == tensor.globalShape.count else {
            throw CheckpointError(
                .invalidArgument,
                "tensor '\(fqn)': chunk offsets \(chunk.offsets) / sizes \(chunk.sizes) do not match the \(tensor.globalShape.count)-d global shape \(tensor.globalShape)")
        }
        let bytes = chunk.elementCount * tensor.dtype.itemSize
        guard chunk.byteOffset >= 0, chunk.byteOffset + bytes <= chunk.buffer.count else {
            throw CheckpointError(
                .invalidArgument,
                "tensor '\(fqn)': chunk at \(chunk.offsets) needs \(bytes) bytes at buffer offset \(chunk.byteOffset), the buffer has \(chunk.buffer.count)")
        }
    }

    struct WrittenFiles {
        var records: [WriteResultMessage.Record]
        var files: [String]
        var payload: Int
        var total: Int
    }

    /// Writes this rank's data files (in parallel), each: BYTE_IO records first, then tensor
    /// records, then fsync.
    func writeFiles(
        _ files: [GlobalPlanMessage.File], items: [LocalPlanMessage.Item], state: StateDict, directory: String
    ) async throws -> WrittenFiles {
        // Resolve each item to its memory (tensor chunk) or value once.
        let sources = try Self.itemSources(state)
        guard sources.count == items.count else {
            throw CheckpointError(.protocolViolation, "rank \(rank) has \(sources.count) items, planned \(items.count)")
        }
        let engine = self.engine, options = self.options
        return try await withThrowingTaskGroup(of: WrittenFiles.self) { group in
            for file in files {
                let work = file.items.map { (index: $0, source: sources[$0]) }
                group.addTask {
                    try await Self.writeFile(
                        path: directory + "/" + file.name, name: file.name, work: work, engine: engine, options: options)
                }
            }
            var all = WrittenFiles(records: [], files: [], payload: 0, total: 0)
            for try await one in group {
                all.records += one.records
                all.files += one.files
                all.payload += one.payload
                all.total += one.total
            }
            return all
        }
    }

    enum ItemSource: Sendable {
        case chunk(dtype: DType, chunk: TensorChunk)
        case value(TorchValue)
    }

    static func itemSources(_ state: StateDict) throws -> [ItemSource] {
        var sources: [ItemSource] = []
        for entry in state.entries {
            switch entry.value {
            case .tensor(let tensor):
                for chunk in tensor.chunks { sources.append(.chunk(dtype: tensor.dtype, chunk: chunk)) }
            case .value(let value):
                sources.append(.value(value))
            }
        }
        return sources
    }

    static func writeFile(
        path: String, name: String, work: [(index: Int, source: ItemSource)], engine: IOEngine, options: CheckpointOptions
    ) async throws -> WrittenFiles {
        let file = try engine.open(path, mode: .write(create: true, truncate: true), direct: options.direct)
        let writer = RecordFileWriter(engine: engine, file: file)
        var records: [WriteResultMessage.Record] = []
        var payloadBytes = 0
        var prefixes: [RecordPrefixKey: RecordLayout] = [:]
        do {
            // BYTE_IO records first (DCP order), then tensors.
            let ordered = work.filter { if case .value = $0.source { true } else { false } }
                + work.filter { if case .chunk = $0.source { true } else { false } }
            // The file's exact final length, preallocated at once: record lengths do not depend on
            // the CRCs, so the layouts cached here serve the writes below. (Reserving more and
            // trimming would free blocks, which costs discards on file systems mounted with them.)
            var values: [Int: [UInt8]] = [:]
            var expected = 0
            for (index, source) in ordered {
                switch source {
                case .value(let value):
                    let record = try ByteIORecord.encode(value)
                    values[index] = record
                    expected += record.count
                case .chunk(let dtype, let chunk):
                    let key = recordKey(dtype: dtype, chunk: chunk, file: file, options: options)
                    if key.alignment == RecordFileWriter.alignment {
                        expected = (expected + key.alignment - 1) / key.alignment * key.alignment
                    }
                    expected += try prefix(key, cache: &prefixes).recordLength
                }
            }
            try writer.reserve((expected + RecordFileWriter.alignment - 1) / RecordFileWriter.alignment * RecordFileWriter.alignment)
            for (index, source) in ordered {
                switch source {
                case .value(let value):
                    let record = try values[index] ?? ByteIORecord.encode(value)
                    let offset = writer.position
                    let hash = record.withUnsafeBytes { PayloadHashes.compute($0, crc: false, xxh3: true) }
                    try await writer.append(record)
                    records.append(.init(
                        item: index, file: name, offset: offset, length: record.count, payloadOffset: offset,
                        payloadLength: record.count, xxh3: hash.xxh3))
                case .chunk(let dtype, let chunk):
                    let record = try await writeTensorRecord(
                        dtype: dtype, chunk: chunk, writer: writer, options: options, prefixes: &prefixes)
                    payloadBytes += record.payloadLength
                    records.append(.init(
                        item: index, file: name, offset: record.offset, length: record.length,
                        payloadOffset: record.payloadOffset, payloadLength: record.payloadLength, xxh3: record.xxh3))
                }
            }
            let length = try await writer.finish()
            try await engine.fsync(file)
            try engine.close(file)
            return WrittenFiles(records: records, files: [name], payload: payloadBytes, total: length)
        } catch {
            await writer.abandon()
            try? engine.close(file)
            throw error
        }
    }

    struct TensorRecordWritten {
        var offset: Int
        var length: Int
        var payloadOffset: Int
        var payloadLength: Int
        var xxh3: UInt64
    }

    /// One `torch.save(chunk)` record. Large payloads start at a 4096-aligned file offset and are
    /// written straight from tensor memory while their hashes are computed; small ones are packed.
    /// Records of one dtype, shape and alignment share their bytes up to the payload.
    struct RecordPrefixKey: Hashable {
        var dtype: DType
        var shape: [Int]
        var alignment: Int
    }

    /// The record shape of a chunk: large payloads go straight from tensor memory at a 4096-aligned
    /// file offset, small ones are packed with 64-byte alignment.
    static func recordKey(dtype: DType, chunk: TensorChunk, file: IOFile, options: CheckpointOptions) -> RecordPrefixKey {
        let count = chunk.elementCount * dtype.itemSize
        let direct = options.direct && file.isDirect && count >= options.directPayloadThreshold
        return RecordPrefixKey(dtype: dtype, shape: chunk.sizes, alignment: direct ? RecordFileWriter.alignment : 64)
    }

    /// The record layout (CRC 0) of `key`, cached.
    static func prefix(_ key: RecordPrefixKey, cache: inout [RecordPrefixKey: RecordLayout]) throws -> RecordLayout {
        if let cached = cache[key] { return cached }
        let layout = try TorchTensorRecord.layout(dtype: key.dtype, shape: key.shape, payloadCRC32: 0, alignment: key.alignment)
        cache[key] = layout
        return layout
    }

    static func writeTensorRecord(
        dtype: DType, chunk: TensorChunk, writer: RecordFileWriter, options: CheckpointOptions,
        prefixes: inout [RecordPrefixKey: RecordLayout]
    ) async throws -> TensorRecordWritten {
        let count = chunk.elementCount * dtype.itemSize
        let key = recordKey(dtype: dtype, chunk: chunk, file: writer.file, options: options)
        let direct = key.alignment == RecordFileWriter.alignment
        let alignment = key.alignment
        if direct { try await writer.padToAlignment() }
        let offset = writer.position
        let head = try prefix(key, cache: &prefixes)
        try await writer.append(head.prefix)
        var hashes = PayloadHashes()
        if direct {
            hashes = try await writer.appendPayload(
                chunk.buffer, byteOffset: chunk.byteOffset, count: count, crc: options.zipCRC32, xxh3: options.writeChecksums)
        } else {
            let bytes = UnsafeRawBufferPointer(rebasing: chunk.buffer.bytes[chunk.byteOffset..<(chunk.byteOffset + count)])
            hashes = PayloadHashes.compute(bytes, crc: options.zipCRC32, xxh3: options.writeChecksums)
            try await writer.append(bytes)
        }
        let crc = count == 0 ? 0 : hashes.crc32
        let tail = crc == 0 ? head : try TorchTensorRecord.layout(dtype: dtype, shape: chunk.sizes, payloadCRC32: crc, alignment: alignment)
        try await writer.append(tail.suffix)
        return TensorRecordWritten(
            offset: offset, length: tail.recordLength, payloadOffset: offset + tail.payloadOffset,
            payloadLength: count, xxh3: hashes.xxh3)
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
