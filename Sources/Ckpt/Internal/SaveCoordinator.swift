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

    /// Writes the checksum sidecar and `.metadata` (temporary name, fsync, rename, directory fsync).
    func commit(results: [WriteResultMessage], engine: IOEngine, options: CheckpointOptions) async throws {
        // (rank, item) -> record.
        var records: [[Int: WriteResultMessage.Record]] = Array(repeating: [:], count: results.count)
        for (rank, result) in results.enumerated() {
            for record in result.records { records[rank][record.item] = record }
        }
        var stateDictMetadata = OrderedMap<String, StorageMetadata>()
        var storageData = OrderedMap<MetadataIndex, StorageInfo>()
        var sidecar = ChecksumSidecar(saveID: saveID)
        for entry in plan.metadata {
            switch entry.kind {
            case .bytes(let writer):
                guard let record = records[writer.rank][writer.item] else {
                    throw CheckpointError(.protocolViolation, "rank \(writer.rank) did not report value '\(entry.fqn)'")
                }
                stateDictMetadata[entry.fqn] = .bytes
                storageData[MetadataIndex(fqn: entry.fqn, offset: nil, index: nil)] = StorageInfo(
                    relativePath: record.file, offset: record.offset, length: record.length)
                sidecar.entries.append(.init(record: record, fqn: entry.fqn, offsets: nil))
            case .tensor(let tensor):
                guard let dtype = DType(torchName: tensor.dtype) else {
                    throw CheckpointError(.protocolViolation, "unknown dtype '\(tensor.dtype)' for '\(entry.fqn)'")
                }
                let firstSizes = tensor.chunks.first?.box.sizes ?? tensor.globalShape
                let properties = TensorProperties(
                    dtype: dtype, layout: "torch.strided", requiresGrad: false, memoryFormat: 0, pinMemory: false,
                    strides: contiguousStrides(firstSizes))
                var chunks: [ChunkStorageMetadata] = []
                for (index, chunk) in tensor.chunks.enumerated() {
                    guard let record = records[chunk.writer.rank][chunk.writer.item] else {
                        throw CheckpointError(
                            .protocolViolation, "rank \(chunk.writer.rank) did not report chunk \(chunk.box) of '\(entry.fqn)'")
                    }
                    chunks.append(ChunkStorageMetadata(offsets: chunk.box.offsets, sizes: chunk.box.sizes))
                    storageData[MetadataIndex(fqn: entry.fqn, offset: chunk.box.offsets, index: index)] = StorageInfo(
                        relativePath: record.file, offset: record.offset, length: record.length)
                    sidecar.entries.append(.init(record: record, fqn: entry.fqn, offsets: chunk.box.offsets))
                }
                stateDictMetadata[entry.fqn] = .tensor(TensorStorageMetadata(
                    properties: properties, size: tensor.globalShape, chunks: chunks))
            }
        }
        var plannerData = OrderedMap<String, [PlannerPathElement]>()
        for plan in plans {
            for path in plan.paths where plannerData[path.fqn] == nil && stateDictMetadata[path.fqn] != nil {
                plannerData[path.fqn] = path.path.map {
                    switch $0 {
                    case .key(let k): return .key(k)
                    case .index(let i): return .index(i)
                    }
                }
            }
        }
        let components = Self.pathComponents(directory)
        let metadata = DCPMetadata(
            stateDictMetadata: stateDictMetadata, plannerData: plannerData, storageData: storageData,
            storageMeta: StorageMeta(
                checkpointID: .path(className: "PosixPath", components: components), saveID: saveID, loadID: nil,
                modules: []),
            version: "1.0.0")

        let target = writeDirectory
        if options.writeChecksums {
            try await Self.writeDurably(
                sidecar.encoded(), to: target + "/" + Checkpointer.checksumFileName, engine: engine)
        }
        let temporary = target + "/" + Checkpointer.metadataFileName + ".tmp"
        try await Self.writeDurably(metadata.encoded(), to: temporary, engine: engine)
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
    static func writeDurably(_ bytes: [UInt8], to path: String, engine: IOEngine) async throws {
        let file = try engine.open(path, mode: .write(create: true, truncate: true), direct: false)
        do {
            let staged = TensorBuffer(uninitializedByteCount: bytes.count)
            staged.bytes.copyBytes(from: bytes)
            try await engine.write(file, at: 0, from: UnsafeRawBufferPointer(staged.bytes))
            try await engine.fsync(file)
            try engine.close(file)
        } catch {
            try? engine.close(file)
            throw error
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
