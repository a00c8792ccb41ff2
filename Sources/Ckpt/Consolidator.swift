import CCkptHash
import CkptFormat
public import CkptIO
import CkptPlan
import Foundation

/// Single-file formats a checkpoint can be consolidated into.
public enum ConsolidationFormat: String, Sendable, CaseIterable {
    /// A `torch.save` zip archive, loadable with `torch.load(path, weights_only=True)`.
    case torchSave = "torch"
    /// A safetensors file (tensors only).
    case safetensors
}

/// What a consolidation wrote.
public struct ConsolidationReport: Sendable {
    public var output: String
    public var format: ConsolidationFormat
    public var tensorCount: Int
    public var valueCount: Int
    /// Non-tensor values left out (safetensors holds tensors only).
    public var skippedValues: [String]
    public var tensorBytes: Int
    public var fileBytes: Int
    /// Whether a Lightning `meta.pt` was merged in.
    public var mergedLightningMeta: Bool
    /// Peak bytes held: the piece buffer plus the engine's pool at its peak.
    public var peakWorkingBytes: Int
    /// Whether the file was assembled from whole windows of the data files (the streaming path:
    /// O_DIRECT, no checksum verification, a layout that fits the piece budget), rather than
    /// tensor by tensor.
    public var streamed = false
    /// Bytes read from the data files for the tensors (record headers, small gaps between the
    /// payloads a window covers), when streamed.
    public var dataBytesRead: Int?
}

/// Turns a sharded checkpoint (PyTorch's or ours) into one file, streaming: tensors are read in
/// pieces of at most `pieceBytes` and written out as they arrive, so memory stays bounded however
/// large the checkpoint is (PyTorch's `dcp_to_torch_save` holds the whole model).
///
/// The torch.save output has the original nesting (from `planner_data`), as `dcp_to_torch_save`
/// writes it; for a Lightning folder (a `meta.pt` next to `.metadata`) it is the checkpoint
/// Lightning's `consolidate_checkpoint` writes: `meta.pt` merged in, `model` renamed
/// `state_dict`, `optimizer_N` gathered into `optimizer_states`.
public struct Consolidator: Sendable {
    public let engine: IOEngine
    /// Size of the buffer tensors are read into.
    public let pieceBytes: Int
    public let options: CheckpointOptions

    public init(engine: IOEngine, pieceBytes: Int = 64 << 20, options: CheckpointOptions = CheckpointOptions()) {
        self.engine = engine
        self.pieceBytes = max(pieceBytes, 1 << 16)
        self.options = options
    }

    /// One storage of the output: a checkpoint tensor or a tensor of `meta.pt`.
    enum Source {
        case checkpoint(fqn: String, dtype: DType, shape: [Int])
        case meta(range: Range<Int>)
    }

    /// Writes `directory` as one file at `output` (through a temporary name, renamed at the end;
    /// an existing `output` is refused unless `overwrite`).
    public func consolidate(
        _ directory: String, to output: String, format: ConsolidationFormat, overwrite: Bool = false,
        progress: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil
    ) async throws -> ConsolidationReport {
        if FileManager.default.fileExists(atPath: output), !overwrite {
            throw CheckpointError(.invalidArgument, "output '\(output)' already exists")
        }
        engine.buffers.resetPeak()
        let reader = try await CheckpointReader(directory: directory, engine: engine, options: options)
        let metadata = reader.metadata

        // Values (small) in one load.
        var valueRequest = StateDict()
        var tensors: [(fqn: String, dtype: DType, shape: [Int])] = []
        // Shapes are untrusted: `CheckpointReader` refused any whose bytes, alone or together,
        // exceed 2^60 (`DCPMetadata.boundsProblem`), so the layout arithmetic cannot overflow.
        var tensorBytes = 0
        for (fqn, entry) in metadata.stateDictMetadata.entries {
            switch entry {
            case .bytes: valueRequest.set(fqn, .value(.none))
            case .tensor(let t):
                tensorBytes += t.size.reduce(t.properties.dtype.itemSize, *)
                tensors.append((fqn, t.properties.dtype, t.size))
            }
        }
        let values = valueRequest.count > 0 ? try await reader.load(into: valueRequest).values : [:]

        var report = ConsolidationReport(
            output: output, format: format, tensorCount: tensors.count, valueCount: values.count, skippedValues: [],
            tensorBytes: tensorBytes, fileBytes: 0, mergedLightningMeta: false, peakWorkingBytes: 0)

        // The file's layout: header bytes, then storages in order.
        var sources: [Source] = []
        var metaBytes: [UInt8] = []
        var torchWriter: TorchSaveWriter?
        var safetensorsHeader: [UInt8] = []
        switch format {
        case .safetensors:
            report.skippedValues = values.keys.sorted()
            var metadataMap = OrderedMap<String, String>()
            metadataMap["format"] = "pt"
            do {
                safetensorsHeader = try SafetensorsHeader.encode(
                    tensors: tensors.map { ($0.fqn, $0.dtype, $0.shape) }, metadata: metadataMap).bytes
            } catch {
                throw CheckpointError(.invalidArgument, "cannot write '\(directory)' as safetensors: \(error)", underlying: error)
            }
            sources = tensors.map { .checkpoint(fqn: $0.fqn, dtype: $0.dtype, shape: $0.shape) }
        case .torchSave:
            var tree = try Self.nestedValue(metadata: metadata, tensors: tensors, values: values)
            let metaPath = directory + "/meta.pt"
            if FileManager.default.fileExists(atPath: metaPath) {
                metaBytes = try await Checkpointer.readWholeFile(metaPath, engine: engine)
                let meta: TorchSaveFile
                do {
                    meta = try TorchSaveFile(parsing: metaBytes)
                } catch {
                    throw CheckpointError(.corrupt, "'\(metaPath)': \(error.at(file: metaPath))", underlying: error)
                }
                tree = try Self.lightningFormat(tree, meta: meta)
                report.mergedLightningMeta = true
            }
            let archive = (output as NSString).lastPathComponent.split(separator: ".").first.map(String.init) ?? "archive"
            var writer: TorchSaveWriter
            do {
                writer = try TorchSaveWriter(
                    value: tree, archiveName: archive.isEmpty ? "archive" : archive,
                    alignment: Self.storageAlignment(storages: tensors.count, bytes: report.tensorBytes))
            } catch {
                throw CheckpointError(.invalidArgument, "cannot lay out '\(output)': \(error)", underlying: error)
            }
            // Map the writer's storages (renumbered in traversal order) back to their sources.
            var order: [String] = []
            var seen = Set<String>()
            Self.collectStorageKeys(tree, into: &order, seen: &seen)
            let metaFile = metaBytes.isEmpty ? nil : try? TorchSaveFile(parsing: metaBytes)
            let byKey = Dictionary(uniqueKeysWithValues: tensors.map { ("dcp:" + $0.fqn, $0) })
            for key in order {
                if let t = byKey[key] {
                    sources.append(.checkpoint(fqn: t.fqn, dtype: t.dtype, shape: t.shape))
                } else if key.hasPrefix("meta:"), let storage = metaFile?.storage(String(key.dropFirst(5))) {
                    sources.append(.meta(range: storage.byteRange))
                } else {
                    throw CheckpointError(.protocolViolation, "no source for storage '\(key)'")
                }
            }
            guard sources.count == writer.storages.count else {
                throw CheckpointError(.protocolViolation, "\(sources.count) sources for \(writer.storages.count) storages")
            }
            torchWriter = writer
        }

        // The file's exact layout (it does not depend on the bytes), its length reserved up front:
        // grown in steps and trimmed at the end, the blocks freed by the trim were discarded
        // inside the final fsync, about 0.1 s of a 1 GiB consolidation on the benchmark's disk.
        let layout: OutputLayout
        if let torchWriter {
            layout = try Self.archiveLayout(torchWriter)
        } else {
            layout = Self.safetensorsLayout(
                header: safetensorsHeader.count,
                tensorBytes: tensors.map { $0.shape.reduce(1, *) * $0.dtype.itemSize })
        }
        let expected = layout.length
        let temporary = output + ".ckpt-tmp-\(getpid())"
        // Before any plan or buffer sized by it: a layout claiming more bytes than the output's file
        // system holds (a hostile `.metadata` mapping many chunks onto one record, say) stops here.
        if let available = Self.availableBytes(Self.parentDirectory(of: output)), expected > available {
            throw CheckpointError(
                .io, "consolidating '\(directory)' into '\(output)' needs \(expected) bytes; its file system has \(available) available")
        }

        // The streaming path where it applies (see Consolidator+Stream.swift).
        if options.direct, !options.verifyChecksums,
            let stream = try await streamPlan(reader: reader, sources: sources, layout: layout, metaBytes: metaBytes)
        {
            var glue: OutputGlue
            if let torchWriter {
                glue = try OutputGlue(torchSave: torchWriter, layout: layout)
            } else {
                glue = try OutputGlue(safetensorsHeader: safetensorsHeader, layout: layout)
            }
            let file = try engine.open(temporary, mode: .write(create: true, truncate: true), direct: true)
            do {
                _ = try engine.preallocate(file, upTo: Int64((expected + 4095) / 4096 * 4096))
                let tensorBytes = report.tensorBytes
                let buffers = try await runStream(
                    stream, reader: reader, into: file, metaBytes: metaBytes, glue: &glue,
                    progress: progress.map { callback in
                        { done in callback(Self.scaled(done, of: expected, to: tensorBytes), tensorBytes) }
                    })
                try await engine.fsync(file)
                try engine.close(file)
                try engine.rename(temporary, to: output)
                try engine.syncDirectory(Self.parentDirectory(of: output))
                report.fileBytes = expected
                report.streamed = true
                report.dataBytesRead = stream.plan.readBytes
                report.peakWorkingBytes = buffers + engine.buffers.peakHeldBytes
                return report
            } catch {
                try? engine.close(file)
                unlink(temporary)
                throw error
            }
        }

        // Stream it out in batches.
        let file = try engine.open(temporary, mode: .write(create: true, truncate: true), direct: options.direct)
        let out = RecordFileWriter(engine: engine, file: file)
        out.stagingWritesInFlight = max(2, engine.buffers.bufferCount * 3 / 4)
        try out.reserve(expected)
        // The piece budget in `slots` buffers: up to `slots - 1` batches load ahead while one is
        // written (a torch.save output straight from its slot, which loads again once those writes
        // are done; safetensors through staging), and the writer keeps most of the pool in flight. A disk serves
        // a copy's reads and writes one after the other; with one batch loading at a time the
        // reads had a few requests queued and the copy ran at 70-75% of a raw copy, with three
        // ahead at 81-88%. Each batch reads its share of every data file, so a slot's size over the
        // number of files is the size of the device's read requests: 8 MiB slots (a 32 MiB piece)
        // left 1.6 MiB reads on the benchmark's 4 files, 16 MiB slots (the default 64 MiB) give
        // 3-4 MiB ones, which a virtual disk serves markedly faster.
        let slots = Self.slots
        let slotBytes = max(pieceBytes / slots, 1 << 15)
        let buffers = (0..<slots).map { _ in TensorBuffer(uninitializedByteCount: slotBytes) }
        let batches = Self.batches(sources, maxBytes: slotBytes)
        let ahead = slots - 1
        var done = 0
        var loads: [Int: Task<[UInt32], any Error>] = [:]
        let zipCRC = format == .torchSave
        do {
            if var w = torchWriter {
                try await out.append(try w.start())
                torchWriter = w
            } else {
                try await out.append(safetensorsHeader)
            }
            for index in 0..<min(ahead, batches.count) {
                loads[index] = Self.prefetch(
                    batches[index], sources: sources, into: buffers[index % slots], reader: reader, crc: zipCRC)
            }
            var crc: UInt32 = 0
            for (index, batch) in batches.enumerated() {
                let crcs = try await loads.removeValue(forKey: index)?.value ?? []
                guard !zipCRC || crcs.count == batch.items.count else {
                    throw CheckpointError(.aborted, "internal error: \(crcs.count) checksums for \(batch.items.count) blocks")
                }
                let piece = buffers[index % slots]
                for (k, item) in batch.items.enumerated() {
                    if item.first, var w = torchWriter {
                        try await out.append(try w.beginStorage())
                        torchWriter = w
                        crc = 0
                    }
                    switch sources[item.source] {
                    case .meta(let range):
                        let bytes = Array(metaBytes[range])
                        crc = bytes.withUnsafeBytes { ckpt_crc32_update(crc, $0.baseAddress, $0.count) }
                        try await out.append(bytes)
                    case .checkpoint:
                        // The zip's CRC-32 (safetensors has none), of each block computed by its load.
                        if item.bytes > 0, zipCRC {
                            crc = ckpt_crc32_combine(crc, crcs[k], UInt64(item.bytes))
                        }
                        // Written from the slot itself where the file position is aligned.
                        try await out.append(piece, byteOffset: item.at, count: item.bytes)
                        done += item.bytes
                        progress?(done, report.tensorBytes)
                    }
                    if item.last, var w = torchWriter {
                        try await out.append(try w.endStorage(crc32: crc))
                        torchWriter = w
                    }
                }
                // The previous batch's slot loads the next batch once its writes are done; this
                // batch's writes are queued first, so the device has them meanwhile.
                let upcoming = index + ahead
                if upcoming < batches.count {
                    let slot = buffers[upcoming % slots]
                    try await out.waitForWrites(from: slot)
                    loads[upcoming] = Self.prefetch(batches[upcoming], sources: sources, into: slot, reader: reader, crc: zipCRC)
                }
            }
            if var w = torchWriter { try await out.append(try w.finish()) }
            report.fileBytes = try await out.finish()
            try await engine.fsync(file)
            try engine.close(file)
            try engine.rename(temporary, to: output)
            try engine.syncDirectory(Self.parentDirectory(of: output))
        } catch {
            // Loads still running write into the slots: let them finish first.
            for (_, load) in loads { _ = try? await load.value }
            await out.abandon()
            try? engine.close(file)
            unlink(temporary)
            throw error
        }
        report.peakWorkingBytes = slots * slotBytes + engine.buffers.peakHeldBytes
        return report
    }

    /// `done` bytes of `total` as a share of `target` (progress in tensor bytes from output
    /// bytes), without overflowing however large the file.
    static func scaled(_ done: Int, of total: Int, to target: Int) -> Int {
        guard total > 0, done > 0 else { return 0 }
        guard done < total else { return target }
        let (high, low) = done.multipliedFullWidth(by: target)
        return total.dividingFullWidth((high, low)).quotient
    }

    /// Bytes an unprivileged writer can still use on `path`'s file system (nil if unknown).
    static func availableBytes(_ path: String) -> Int? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let (bytes, overflow) = Int(info.f_bavail).multipliedReportingOverflow(by: Int(info.f_frsize))
        return overflow ? Int.max : bytes
    }

    static func parentDirectory(of path: String) -> String {
        let parent = (path as NSString).deletingLastPathComponent
        return parent.isEmpty ? "." : parent
    }

    /// Alignment of a torch.save output's storages: 4096 bytes (as in `.distcp` records), so that
    /// they are written straight from the buffers they are read into, when the padding that costs
    /// (up to 4 KiB per storage) stays within 1% of the tensor bytes; torch.save's own 64 bytes
    /// otherwise (many small tensors, such as adapter weights, would bloat the file). One
    /// alignment for the whole archive: `.storage_alignment` states it, and PyTorch can compute
    /// storage offsets from it (`calculate_storage_offsets`).
    static func storageAlignment(storages: Int, bytes: Int) -> Int {
        let direct = RecordFileWriter.alignment
        return storages <= bytes / 100 / direct ? direct : 64
    }

    /// The archive's exact length: its layout does not depend on the payloads or their CRCs.
    static func archiveLength(_ writer: TorchSaveWriter) throws -> Int {
        try archiveLayout(writer).length
    }

    /// Where each storage's bytes start in the archive, and its length (a dry run of the writer).
    static func archiveLayout(_ writer: TorchSaveWriter) throws -> OutputLayout {
        var w = writer
        var layout = OutputLayout(dataOffsets: [], dataLengths: [], length: try w.start().count)
        for storage in w.storages {
            layout.length += try w.beginStorage().count
            layout.dataOffsets.append(layout.length)
            layout.dataLengths.append(storage.byteCount)
            layout.length += storage.byteCount
            layout.length += try w.endStorage(crc32: 0).count
        }
        layout.length += try w.finish().count
        return layout
    }

    /// A safetensors file's layout: the header, then the tensors back to back.
    static func safetensorsLayout(header: Int, tensorBytes: [Int]) -> OutputLayout {
        var layout = OutputLayout(dataOffsets: [], dataLengths: tensorBytes, length: header)
        for bytes in tensorBytes {
            layout.dataOffsets.append(layout.length)
            layout.length += bytes
        }
        return layout
    }

    /// The nested value `dcp_to_torch_save` saves: entries placed at their `planner_data` paths.
    static func nestedValue(
        metadata: DCPMetadata, tensors: [(fqn: String, dtype: DType, shape: [Int])], values: [String: TorchValue]
    ) throws -> TorchValue {
        let tensorIndex = Dictionary(uniqueKeysWithValues: tensors.map { ($0.fqn, $0) })
        var entries: [(path: [PathElement], value: StateTree<TorchValue>)] = []
        for (fqn, _) in metadata.stateDictMetadata.entries {
            let leaf: TorchValue
            if let t = tensorIndex[fqn] {
                leaf = .tensor(TensorReference(storageKey: "dcp:" + fqn, dtype: t.dtype, shape: t.shape))
            } else {
                leaf = values[fqn] ?? .none
            }
            let path: [PathElement] = metadata.plannerData?[fqn].map { elements in
                elements.map {
                    switch $0 {
                    case .key(let k): return PathElement.key(k)
                    case .index(let i): return PathElement.index(i)
                    }
                }
            } ?? [.key(fqn)]
            entries.append((path, .leaf(leaf)))
        }
        let tree: StateTree<TorchValue>
        do {
            tree = try StateTree<TorchValue>.unflatten(entries, padding: .none)
        } catch {
            throw CheckpointError(.corrupt, "planner_data paths do not form a state dict: \(error)", underlying: error)
        }
        return torchValue(tree)
    }

    static func torchValue(_ tree: StateTree<TorchValue>) -> TorchValue {
        switch tree {
        case .leaf(let v): return v
        case .list(let items): return .list(items.map(torchValue))
        case .dict(let items): return .dict(items.map { TorchValue.Entry(.string($0.key), torchValue($0.value)) })
        }
    }

    /// Lightning's `_load_distributed_checkpoint` + `_format_checkpoint`: merge `meta.pt`, rename
    /// `model` to `state_dict`, gather `optimizer_N` into `optimizer_states`.
    static func lightningFormat(_ tree: TorchValue, meta: TorchSaveFile) throws -> TorchValue {
        guard case .dict(var entries) = tree else {
            throw CheckpointError(.corrupt, "checkpoint root is not a dict")
        }
        guard case .dict(let metaEntries) = rekeyMeta(meta.value) else {
            throw CheckpointError(.corrupt, "meta.pt does not hold a dict")
        }
        for entry in metaEntries {
            if let i = entries.firstIndex(where: { $0.key == entry.key }) {
                entries[i].value = entry.value
            } else {
                entries.append(entry)
            }
        }
        func pop(_ key: String) -> TorchValue? {
            guard let i = entries.firstIndex(where: { $0.key == .string(key) }) else { return nil }
            return entries.remove(at: i).value
        }
        if let model = pop("model") {
            entries.append(TorchValue.Entry(.string("state_dict"), model))
        }
        var optimizers: [(Int, TorchValue)] = []
        for entry in entries {
            guard case .string(let key) = entry.key, key.hasPrefix("optimizer_"), let n = Int(key.dropFirst(10)) else { continue }
            optimizers.append((n, entry.value))
        }
        if !optimizers.isEmpty {
            for (n, _) in optimizers { _ = pop("optimizer_\(n)") }
            entries.append(TorchValue.Entry(.string("optimizer_states"), .list(optimizers.sorted { $0.0 < $1.0 }.map(\.1))))
        }
        return .dict(entries)
    }

    /// Prefixes `meta.pt`'s storage keys so they cannot clash with checkpoint tensors.
    static func rekeyMeta(_ value: TorchValue) -> TorchValue {
        switch value {
        case .tensor(var t):
            t.storageKey = "meta:" + t.storageKey
            return .tensor(t)
        case .list(let a): return .list(a.map(rekeyMeta))
        case .tuple(let a): return .tuple(a.map(rekeyMeta))
        case .dict(let e): return .dict(e.map { TorchValue.Entry($0.key, rekeyMeta($0.value)) })
        default: return value
        }
    }

    /// Storage keys in the order `TorchSaveWriter` numbers them (pickle traversal order).
    static func collectStorageKeys(_ value: TorchValue, into order: inout [String], seen: inout Set<String>) {
        switch value {
        case .tensor(let t):
            if seen.insert(t.storageKey).inserted { order.append(t.storageKey) }
        case .list(let a), .tuple(let a):
            for x in a { collectStorageKeys(x, into: &order, seen: &seen) }
        case .dict(let e):
            for x in e {
                collectStorageKeys(x.key, into: &order, seen: &seen)
                collectStorageKeys(x.value, into: &order, seen: &seen)
            }
        default: break
        }
    }
}
