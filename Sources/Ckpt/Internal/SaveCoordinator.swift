import CkptFormat
import CkptIO
import CkptPlan
import Foundation

/// Rank 0's part of a save: the global plan, then `.metadata` and the commit.
struct SaveCoordinator {
    let directory: String
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
            try prepareDirectory(directory, overwrite: options.overwrite)
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
            let coordinator = SaveCoordinator(directory: directory, saveID: saveID, plans: plans, plan: global, files: files)
            return (coordinator, GlobalPlanMessage(directory: directory, saveID: saveID, files: files))
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

    /// Creates the directory, or checks that an existing one holds no committed checkpoint.
    static func prepareDirectory(_ directory: String, overwrite: Bool) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw CheckpointError(.invalidArgument, "'\(directory)' exists and is not a directory")
            }
            if fm.fileExists(atPath: directory + "/" + Checkpointer.metadataFileName) {
                guard overwrite else {
                    throw CheckpointError(
                        .invalidArgument,
                        "'\(directory)' already holds a committed checkpoint; save each step to a new directory, or set overwrite")
                }
                // Overwrite: uncommit first would lose the old checkpoint before the new one is
                // complete; instead the old `.metadata` stays until the new one replaces it by
                // rename. Data files are rewritten in place, so the old checkpoint stops being
                // loadable from the first write: callers that need the previous checkpoint to
                // survive a crash must save to a new directory (the documented policy).
            }
        } else {
            do {
                try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw CheckpointError(.io, "cannot create checkpoint directory '\(directory)'", underlying: error)
            }
        }
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

        if options.writeChecksums {
            try await Self.writeDurably(
                sidecar.encoded(), to: directory + "/" + Checkpointer.checksumFileName, engine: engine)
        }
        let temporary = directory + "/" + Checkpointer.metadataFileName + ".tmp"
        try await Self.writeDurably(metadata.encoded(), to: temporary, engine: engine)
        guard rename(temporary, directory + "/" + Checkpointer.metadataFileName) == 0 else {
            throw CheckpointError(
                .io, "cannot rename '\(temporary)' to '\(Checkpointer.metadataFileName)': \(String(cString: strerror(errno)))")
        }
        try engine.syncDirectory(directory)
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
