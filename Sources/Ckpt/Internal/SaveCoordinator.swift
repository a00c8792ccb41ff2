import CkptFormat
import CkptIO
import CkptPlan
import Foundation

/// Rank 0's part of a save: the global plan, then `.metadata` and the commit.
struct SaveCoordinator {
    /// Where the checkpoint ends up.
    let directory: String
    /// Where the ranks write: `directory` itself, or a sibling staging directory when an existing
    /// committed checkpoint is replaced (swapped in atomically at commit).
    let writeDirectory: String
    let saveID: String
    let plans: [LocalPlanMessage]
    let plan: GlobalSavePlan
    /// Per rank, per item: the metadata entry index and chunk index it fills.
    let files: [[GlobalPlanMessage.File]]

    static func make(
        plans: [LocalPlanMessage], directory: String, options: CheckpointOptions
    ) -> (coordinator: SaveCoordinator?, message: GlobalPlanMessage) {
        if let failed = plans.first(where: { $0.error != nil }), let error = failed.error {
            return (nil, GlobalPlanMessage(error: error))
        }
        do {
            let replacing = try prepareDirectory(directory, overwrite: options.overwrite)
            let items: [[SaveItem]] = try plans.enumerated().map { rank, plan in
                try plan.items.map { item in try saveItem(item, rank: rank) }
            }
            guard options.filesPerRank >= 1 else {
                throw CheckpointError(.invalidArgument, "filesPerRank must be at least 1, got \(options.filesPerRank)")
            }
            let global = try SavePlanner.plan(
                ranks: items,
                options: SavePlanOptions(dedup: options.dedup, fileLayout: .singleFilePerRank(filesPerRank: options.filesPerRank)))
            let files = global.files.map { rankFiles in
                rankFiles.map { GlobalPlanMessage.File(name: $0.name, items: $0.items) }
            }
            let saveID = UUID().uuidString.lowercased()
            var writeDirectory = directory
            if replacing {
                writeDirectory = Self.stagingName(directory, saveID: saveID)
                do {
                    try FileManager.default.createDirectory(atPath: writeDirectory, withIntermediateDirectories: false)
                } catch {
                    throw CheckpointError(.io, "cannot create staging directory '\(writeDirectory)'", underlying: error)
                }
            }
            let coordinator = SaveCoordinator(
                directory: directory, writeDirectory: writeDirectory, saveID: saveID, plans: plans, plan: global, files: files)
            return (coordinator, GlobalPlanMessage(directory: writeDirectory, saveID: saveID, files: files))
        } catch {
            return (nil, GlobalPlanMessage(error: "rank 0 planning: \(error)"))
        }
    }

    static func saveItem(_ item: LocalPlanMessage.Item, rank: Int) throws -> SaveItem {
        guard let dtype = item.dtype else {
            return .bytes(fqn: item.fqn, estimatedSize: item.estimatedSize ?? 1)
        }
        guard let elementSize = item.elementSize, let shape = item.globalShape, let offsets = item.offsets,
            let sizes = item.sizes
        else {
            throw CheckpointError(.protocolViolation, "rank \(rank) sent an incomplete tensor item '\(item.fqn)'")
        }
        return .tensor(TensorWriteItem(
            fqn: item.fqn, globalShape: shape, elementSize: elementSize, dtype: dtype,
            chunk: ChunkBox(offsets: offsets, sizes: sizes)))
    }

    /// Sibling directory a replacing save writes into.
    static func stagingName(_ directory: String, saveID: String) -> String {
        var trimmed = directory
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed + ".ckpt-staging-" + saveID.prefix(8)
    }

    /// Creates the directory, or checks an existing one. Returns true when it holds a committed
    /// checkpoint that this save replaces (only with `overwrite`).
    static func prepareDirectory(_ directory: String, overwrite: Bool) throws -> Bool {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw CheckpointError(.invalidArgument, "'\(directory)' exists and is not a directory")
            }
            guard fm.fileExists(atPath: directory + "/" + Checkpointer.metadataFileName) else { return false }
            guard overwrite else {
                throw CheckpointError(
                    .invalidArgument,
                    "'\(directory)' already holds a committed checkpoint; save each step to a new directory, or set overwrite")
            }
            // The old checkpoint stays untouched until the new one is committed in a staging
            // directory and swapped in (see `commit`).
            return true
        }
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError(.io, "cannot create checkpoint directory '\(directory)'", underlying: error)
        }
        return false
    }

    /// After a failed save that was replacing a checkpoint: removes the staging directory.
    func discardStaging() {
        guard writeDirectory != directory else { return }
        try? FileManager.default.removeItem(atPath: writeDirectory)
    }

    /// Everything of `.metadata` and the sidecar that does not depend on where the ranks' records
    /// landed: built while the ranks write, so that the commit has little left to do.
    struct PreparedCommit: Sendable {
        /// One `.metadata` storage entry (and sidecar entry), in file order.
        struct Slot: Sendable {
            var fqn: String
            /// Chunk offsets; nil for a BYTE_IO value.
            var offsets: [Int]?
            /// Chunk index within its tensor.
            var index: Int?
            var writer: SaveItemReference
        }
        var stateDictMetadata: OrderedMap<String, StorageMetadata>
        var plannerData: OrderedMap<String, [PlannerPathElement]>
        /// Every storage key in file order, with placeholder values (updating an existing key is
        /// much cheaper than inserting one).
        var storageData: OrderedMap<MetadataIndex, StorageInfo>
        var slots: [Slot]
        /// Per rank, per item: its slot, or -1 when the item is not written by that rank.
        var slotOfItem: [[Int]]
    }

    func prepareCommit() throws -> PreparedCommit {
        var stateDictMetadata = OrderedMap<String, StorageMetadata>()
        var storageData = OrderedMap<MetadataIndex, StorageInfo>()
        let placeholder = StorageInfo(relativePath: "", offset: 0, length: 0)
        var slots: [PreparedCommit.Slot] = []
        var slotOfItem = plans.map { [Int](repeating: -1, count: $0.items.count) }
        func assign(_ writer: SaveItemReference) throws {
            guard slotOfItem.indices.contains(writer.rank), slotOfItem[writer.rank].indices.contains(writer.item) else {
                throw CheckpointError(.protocolViolation, "the plan names \(writer), which does not exist")
            }
            slotOfItem[writer.rank][writer.item] = slots.count
        }
        for entry in plan.metadata {
            switch entry.kind {
            case .bytes(let writer):
                stateDictMetadata[entry.fqn] = .bytes
                try assign(writer)
                slots.append(.init(fqn: entry.fqn, offsets: nil, index: nil, writer: writer))
                storageData[MetadataIndex(fqn: entry.fqn, offset: nil, index: nil)] = placeholder
            case .tensor(let tensor):
                guard let dtype = DType(torchName: tensor.dtype) else {
                    throw CheckpointError(.protocolViolation, "unknown dtype '\(tensor.dtype)' for '\(entry.fqn)'")
                }
                let firstSizes = tensor.chunks.first?.box.sizes ?? tensor.globalShape
                let properties = TensorProperties(
                    dtype: dtype, layout: "torch.strided", requiresGrad: false, memoryFormat: 0, pinMemory: false,
                    strides: contiguousStrides(firstSizes))
                var chunks: [ChunkStorageMetadata] = []
                chunks.reserveCapacity(tensor.chunks.count)
                for (index, chunk) in tensor.chunks.enumerated() {
                    chunks.append(ChunkStorageMetadata(offsets: chunk.box.offsets, sizes: chunk.box.sizes))
                    try assign(chunk.writer)
                    slots.append(.init(fqn: entry.fqn, offsets: chunk.box.offsets, index: index, writer: chunk.writer))
                    storageData[MetadataIndex(fqn: entry.fqn, offset: chunk.box.offsets, index: index)] = placeholder
                }
                stateDictMetadata[entry.fqn] = .tensor(TensorStorageMetadata(
                    properties: properties, size: tensor.globalShape, chunks: chunks))
            }
        }
        // Membership through local sets: OrderedMap lookups are much slower (generic, across modules).
        let saved = Set(plan.metadata.map(\.fqn))
        var planned = Set<String>()
        var plannerData = OrderedMap<String, [PlannerPathElement]>()
        for plan in plans {
            for path in plan.paths where saved.contains(path.fqn) && planned.insert(path.fqn).inserted {
                plannerData[path.fqn] = path.path.map {
                    switch $0 {
                    case .key(let k): return .key(k)
                    case .index(let i): return .index(i)
                    }
                }
            }
        }
        return PreparedCommit(
            stateDictMetadata: stateDictMetadata, plannerData: plannerData, storageData: storageData, slots: slots,
            slotOfItem: slotOfItem)
    }

    /// The `.metadata` and sidecar of this save, from the prepared part and the ranks' records.
    func finalMetadata(
        _ prepared: PreparedCommit, results: [WriteResultMessage]
    ) throws -> (metadata: DCPMetadata, sidecar: ChecksumSidecar) {
        guard results.count == prepared.slotOfItem.count else {
            throw CheckpointError(.protocolViolation, "\(results.count) write results for \(prepared.slotOfItem.count) ranks")
        }
        // Per slot: the rank and position of its record (rank -1: not reported).
        var filled = [(rank: Int, position: Int)](repeating: (-1, 0), count: prepared.slots.count)
        for (rank, result) in results.enumerated() {
            let slotOfItem = prepared.slotOfItem[rank]
            for (position, record) in result.records.enumerated() {
                guard slotOfItem.indices.contains(record.item), slotOfItem[record.item] >= 0 else {
                    throw CheckpointError(
                        .protocolViolation, "rank \(rank) reported item \(record.item), which it was not asked to write")
                }
                let slot = slotOfItem[record.item]
                guard filled[slot].rank < 0 else {
                    throw CheckpointError(.protocolViolation, "rank \(rank) reported item \(record.item) twice")
                }
                filled[slot] = (rank, position)
            }
        }
        var storageData = prepared.storageData
        var sidecar = ChecksumSidecar(saveID: saveID)
        sidecar.entries.reserveCapacity(prepared.slots.count)
        for (slot, at) in zip(prepared.slots, filled) {
            guard at.rank >= 0 else {
                if let offsets = slot.offsets {
                    throw CheckpointError(
                        .protocolViolation, "rank \(slot.writer.rank) did not report chunk at \(offsets) of '\(slot.fqn)'")
                }
                throw CheckpointError(.protocolViolation, "rank \(slot.writer.rank) did not report value '\(slot.fqn)'")
            }
            let record = results[at.rank].records[at.position]
            storageData[MetadataIndex(fqn: slot.fqn, offset: slot.offsets, index: slot.index)] = StorageInfo(
                relativePath: record.file, offset: record.offset, length: record.length)
            sidecar.entries.append(.init(record: record, fqn: slot.fqn, offsets: slot.offsets))
        }
        let metadata = DCPMetadata(
            stateDictMetadata: prepared.stateDictMetadata, plannerData: prepared.plannerData, storageData: storageData,
            storageMeta: StorageMeta(
                checkpointID: .path(className: "PosixPath", components: Self.pathComponents(directory)), saveID: saveID,
                loadID: nil, modules: []),
            version: "1.0.0")
        return (metadata, sidecar)
    }

    /// Writes the checksum sidecar, `.metadata.tmp` and the index (concurrently; the first two
    /// fsynced), then renames `.metadata.tmp` to `.metadata` and fsyncs the directory: both files
    /// are durable before `.metadata` appears.
    func commit(
        results: [WriteResultMessage], prepared: PreparedCommit, engine: IOEngine, options: CheckpointOptions
    ) async throws {
        let (metadata, sidecar) = try finalMetadata(prepared, results: results)
        let target = writeDirectory
        let temporary = target + "/" + Checkpointer.metadataFileName + ".tmp"
        let writeChecksums = options.writeChecksums
        async let sidecarEncoded: [UInt8] = writeChecksums ? try sidecar.encoded() : []
        let metadataBytes = metadata.encoded()
        let sidecarBytes = try await sidecarEncoded
        try await Self.writeCommitFiles(
            metadata: (metadata, metadataBytes), sidecar: writeChecksums ? (sidecar, sidecarBytes) : nil,
            directory: target, engine: engine)
        let committed = target + "/" + Checkpointer.metadataFileName
        try engine.rename(temporary, to: committed)
        do {
            try engine.syncDirectory(target)
        } catch {
            // The rename may not be durable: report the save as failed, and make sure it does not
            // look committed (a failed save must never leave a committed `.metadata`).
            unlink(committed)
            try? engine.syncDirectory(target)
            throw error
        }
        if target != directory { try swapIn(engine: engine) }
    }

    /// Replaces the committed checkpoint in `directory` by the one just committed in the staging
    /// directory: an atomic exchange of the two directories (renameat2 RENAME_EXCHANGE), so that
    /// `directory` holds a complete checkpoint at every instant; then the old one is removed. Where
    /// the file system cannot exchange, the old directory is renamed aside first (a crash between
    /// the two renames leaves both checkpoints complete, under the two names).
    func swapIn(engine: IOEngine) throws {
        let parent = (directory as NSString).deletingLastPathComponent
        do {
            try engine.exchange(writeDirectory, directory)
            do {
                try engine.syncDirectory(parent.isEmpty ? "." : parent)
            } catch {
                // Not durable: swap the old checkpoint back and report the failure.
                try? engine.exchange(writeDirectory, directory)
                throw error
            }
            try? FileManager.default.removeItem(atPath: writeDirectory)
        } catch let error as IOError where error.errno == .invalidArgument {
            let aside = directory + ".ckpt-old-" + saveID.prefix(8)
            try engine.rename(directory, to: aside)
            try engine.rename(writeDirectory, to: directory)
            try engine.syncDirectory(parent.isEmpty ? "." : parent)
            try? FileManager.default.removeItem(atPath: aside)
        }
    }

    /// `PosixPath` components as Python's `pathlib` splits them.
    static func pathComponents(_ path: String) -> [String] {
        var parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if path.hasPrefix("/") { parts.insert("/", at: 0) }
        return parts.isEmpty ? ["."] : parts
    }

    /// Writes `bytes` to a new file at `path` (buffered) and fsyncs it.
    static func writeDurably(_ bytes: [UInt8], to path: String, engine: IOEngine, sync: Bool = true) async throws {
        let file = try engine.open(path, mode: .write(create: true, truncate: true), direct: false)
        do {
            let staged = TensorBuffer(uninitializedByteCount: bytes.count)
            staged.bytes.copyBytes(from: bytes)
            try await engine.write(file, at: 0, from: UnsafeRawBufferPointer(staged.bytes))
            if sync { try await engine.fsync(file) }
            try engine.close(file)
        } catch {
            try? engine.close(file)
            throw error
        }
    }

    /// Writes a save's sidecar (when given) and `.metadata.tmp` durably, and its index (a cache
    /// checked against both on every load, so it needs no fsync of its own: a lost or torn index
    /// only sends the next load down the pickle path), all at once. On failure nothing named
    /// `.metadata.tmp` is left.
    static func writeCommitFiles(
        metadata: (value: DCPMetadata, bytes: [UInt8]), sidecar: (value: ChecksumSidecar, bytes: [UInt8])?,
        directory: String, engine: IOEngine
    ) async throws {
        let temporary = directory + "/" + Checkpointer.metadataFileName + ".tmp"
        let index = directory + "/" + CommittedIndex.fileName
        async let sidecarWritten: Void = {
            guard let sidecar else { return }
            try await writeDurably(sidecar.bytes, to: directory + "/" + Checkpointer.checksumFileName, engine: engine)
        }()
        async let metadataWritten: Void = writeDurably(metadata.bytes, to: temporary, engine: engine)
        async let indexWritten: Void = {
            let message = Wire.encode(
                CommittedMessage(.committed(metadata.value, sidecar?.value)),
                capacity: metadata.bytes.count / 2 + (sidecar?.bytes.count ?? 0) / 2 + 64)
            let bytes = CommittedIndex.encode(metadata: metadata.bytes, sidecar: sidecar?.bytes ?? [], message: message)
            try await writeDurably(bytes, to: index, engine: engine, sync: false)
        }()
        var failure: (any Error)?
        do { try await sidecarWritten } catch { failure = error }
        do { try await metadataWritten } catch { failure = failure ?? error }
        do { try await indexWritten } catch { failure = failure ?? error }
        if let failure {
            unlink(temporary)
            unlink(index)
            throw failure
        }
    }
}

/// C-contiguous strides (in elements) of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var running = 1
    for d in shape.indices.reversed() {
        strides[d] = running
        running *= max(shape[d], 1)
    }
    return strides
}
