import CkptFormat
public import CkptIO
import CkptPlan
import Foundation

/// What a conversion wrote.
public struct ConversionReport: Sendable {
    public var output: String
    /// `torch` or `safetensors`.
    public var inputFormat: String
    public var ranks: Int
    public var tensorCount: Int
    public var valueCount: Int
    public var tensorBytes: Int
    public var fileBytes: Int
    /// Peak bytes held: the piece buffer plus the engine's pool at its peak.
    public var peakWorkingBytes: Int
}

/// Turns a single-file checkpoint (`torch.save` archive or safetensors file) into a DCP
/// checkpoint as PyTorch's `torch_save_to_dcp` does: the state dict flattened as `dcp.save`
/// flattens it (dotted fqns, `planner_data` paths), every tensor row-split over `ranks` ranks
/// (rank 0 also holds the values).
///
/// Streaming: only the archive's end (central directory), the local headers and `data.pkl` are
/// read whole; tensor bytes are read by range into one piece buffer and written out, so memory is
/// bounded however large the input is.
public struct CheckpointConverter: Sendable {
    public let engine: IOEngine
    public let pieceBytes: Int
    public let writeChecksums: Bool

    public init(engine: IOEngine, pieceBytes: Int = 32 << 20, writeChecksums: Bool = true) {
        self.engine = engine
        self.pieceBytes = max(pieceBytes, 1 << 16)
        self.writeChecksums = writeChecksums
    }

    /// Where the bytes of one input tensor are: contiguous, C order, starting at `fileOffset`.
    struct InputTensor {
        var dtype: DType
        var shape: [Int]
        var fileOffset: Int
    }

    enum Leaf {
        case tensor(InputTensor)
        case value(TorchValue)
    }

    /// Converts `input` into the new DCP directory `output` written by `ranks` ranks.
    public func convert(
        _ input: String, to output: String, ranks: Int, overwrite: Bool = false, progress: ToolProgress? = nil
    ) async throws -> ConversionReport {
        guard ranks >= 1 else { throw CheckpointError(.invalidArgument, "--ranks must be at least 1, got \(ranks)") }
        engine.buffers.resetPeak()
        let reader = try FileRangeReader(engine: engine, path: input)
        defer { reader.close() }
        let head = try await reader.read(0, min(reader.size, 8))
        let format: String
        let tree: StateTree<Leaf>
        if head.count >= 4, head[0] == 0x50, head[1] == 0x4B, head[2] == 0x03, head[3] == 0x04 {
            format = "torch"
            tree = try await torchSaveTree(reader)
        } else if head.count == 8 {
            format = "safetensors"
            tree = try await safetensorsTree(reader)
        } else {
            throw CheckpointError(.corrupt, "'\(input)' is neither a torch.save archive nor a safetensors file")
        }
        let flattened: [FlattenedEntry<Leaf>]
        do {
            flattened = try tree.flatten { if case .tensor = $0 { true } else { false } }
        } catch {
            throw CheckpointError(.invalidArgument, "'\(input)': the state dict cannot be flattened as DCP does: \(error)", underlying: error)
        }
        var entries: [PlannedEntry] = []
        var plannerData = OrderedMap<String, [PlannerPathElement]>()
        var tensors: [String: InputTensor] = [:]
        for entry in flattened {
            plannerData[entry.fqn] = entry.path.map {
                switch $0 {
                case .key(let k): return .key(k)
                case .index(let i): return .index(i)
                }
            }
            if case .leaf(.tensor(let t)) = entry.value {
                tensors[entry.fqn] = t
                entries.append(.tensor(
                    fqn: entry.fqn, dtype: t.dtype, shape: t.shape, chunks: Resharder.rowSplit(shape: t.shape, ranks: ranks)))
            } else {
                let value = try Self.torchValue(entry.value, fqn: entry.fqn)
                do {
                    entries.append(.value(fqn: entry.fqn, record: try ByteIORecord.encode(value)))
                } catch {
                    throw CheckpointError(.invalidArgument, "'\(input)': value '\(entry.fqn)' cannot be saved as a DCP value: \(error)", underlying: error)
                }
            }
        }
        let plan = OutputPlan(ranks: ranks, entries: entries, plannerData: plannerData)
        let writer = ShardedCheckpointWriter(engine: engine, pieceBytes: pieceBytes, writeChecksums: writeChecksums)
        let inputs = tensors
        let summary = try await writer.write(plan, to: output, overwrite: overwrite, fill: batchFiller { fqn, dtype, shape, offsets, sizes, buffer in
            guard let t = inputs[fqn] else { throw CheckpointError(.protocolViolation, "no input for '\(fqn)'") }
            guard let start = Self.contiguousStart(offsets: offsets, sizes: sizes, shape: shape) else {
                throw CheckpointError(.protocolViolation, "block \(offsets) \(sizes) of '\(fqn)' is not contiguous")
            }
            let n = sizes.reduce(1, *) * dtype.itemSize
            try await reader.read(t.fileOffset + start * dtype.itemSize, into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[..<n]))
        }, progress: progress)
        progress?.finish()
        return ConversionReport(
            output: ToolPaths.normalized(output), inputFormat: format, ranks: ranks, tensorCount: tensors.count,
            valueCount: entries.count - tensors.count, tensorBytes: summary.tensorBytes, fileBytes: summary.fileBytes,
            peakWorkingBytes: pieceBytes + engine.buffers.peakHeldBytes)
    }

    /// Element index of the block's first element when the block is one contiguous run of the
    /// C-order tensor, nil otherwise.
    static func contiguousStart(offsets: [Int], sizes: [Int], shape: [Int]) -> Int? {
        guard let first = sizes.firstIndex(where: { $0 != 1 }) else {
            return zip(offsets, contiguousStrides(shape)).reduce(0) { $0 + $1.0 * $1.1 }
        }
        for d in (first + 1)..<max(first + 1, shape.count) where sizes[d] != shape[d] || offsets[d] != 0 {
            return nil
        }
        return zip(offsets, contiguousStrides(shape)).reduce(0) { $0 + $1.0 * $1.1 }
    }

    static func torchValue(_ tree: StateTree<Leaf>, fqn: String) throws -> TorchValue {
        switch tree {
        case .leaf(.value(let v)): return v
        case .leaf(.tensor): throw CheckpointError(.invalidArgument, "value '\(fqn)' holds a tensor inside a list DCP keeps whole")
        case .list(let items): return .list(try items.map { try torchValue($0, fqn: fqn) })
        case .dict(let items): return .dict(try items.map { TorchValue.Entry(.string($0.key), try torchValue($0.value, fqn: fqn)) })
        }
    }

    // MARK: - torch.save input

    func torchSaveTree(_ reader: FileRangeReader) async throws -> StateTree<Leaf> {
        let path = reader.path
        let directory = try await reader.centralDirectory(archive: 0..<reader.size)
        func entry(_ record: String) -> ZipEntry? {
            let name = directory.prefix + "/" + record
            return directory.entries.first { $0.name == name }
        }
        guard let pkl = entry("data.pkl") else {
            throw CheckpointError(.corrupt, "'\(path)': archive '\(directory.prefix)' has no data.pkl")
        }
        if let byteorder = entry("byteorder") {
            let at = try await reader.payloadOffset(of: byteorder, archiveStart: 0)
            let text = String(decoding: try await reader.read(at, min(byteorder.size, 16)), as: UTF8.self)
            guard text == "little" else { throw CheckpointError(.corrupt, "'\(path)': byteorder '\(text)' is not supported") }
        }
        let pklOffset = try await reader.payloadOffset(of: pkl, archiveStart: 0)
        let pklBytes = try await reader.read(pklOffset, pkl.size)
        let value: TorchValue
        do {
            value = try TorchValue(resolving: try PickleReader().decode(pklBytes))
        } catch {
            throw CheckpointError(.corrupt, "'\(path)': data.pkl: \(error.at(file: path, baseOffset: pklOffset))", underlying: error)
        }
        // Resolve every storage's payload offset once.
        var storageOffsets: [String: Int] = [:]
        for (_, t) in value.tensors() where storageOffsets[t.storageKey] == nil {
            guard let e = entry("data/" + t.storageKey) else {
                throw CheckpointError(.corrupt, "'\(path)': tensor storage 'data/\(t.storageKey)' is missing from the archive")
            }
            guard e.size == t.storageByteCount else {
                throw CheckpointError(.corrupt, "'\(path)': storage data/\(t.storageKey) holds \(e.size) bytes, data.pkl says \(t.storageByteCount)")
            }
            storageOffsets[t.storageKey] = try await reader.payloadOffset(of: e, archiveStart: 0)
        }
        return try Self.tree(value, path: path, storageOffsets: storageOffsets, isRoot: true)
    }

    static func tree(_ value: TorchValue, path: String, storageOffsets: [String: Int], isRoot: Bool = false) throws -> StateTree<Leaf> {
        switch value {
        case .dict(let entries):
            return .dict(try entries.map { entry in
                let key: String
                switch entry.key {
                case .string(let s): key = s
                case .int(let i): key = String(i)
                default:
                    throw CheckpointError(.invalidArgument, "'\(path)': dict key \(ValueRepr.short(entry.key)) is not a string or int")
                }
                return (key, try tree(entry.value, path: path, storageOffsets: storageOffsets))
            })
        case .list(let items) where !isRoot:
            return .list(try items.map { try tree($0, path: path, storageOffsets: storageOffsets) })
        case .tensor(let t) where !isRoot:
            guard t.isContiguous else {
                throw CheckpointError(.invalidArgument, "'\(path)': a tensor of shape \(t.shape) has strides \(t.strides): non-contiguous views are not supported")
            }
            let span: Range<Int>
            do {
                span = try t.spannedByteRange()
            } catch {
                throw CheckpointError(.corrupt, "'\(path)': tensor view outside its storage: \(error)", underlying: error)
            }
            guard let base = storageOffsets[t.storageKey] else {
                throw CheckpointError(.protocolViolation, "storage \(t.storageKey) not resolved")
            }
            return .leaf(.tensor(InputTensor(dtype: t.dtype, shape: t.shape, fileOffset: base + span.lowerBound)))
        default:
            guard !isRoot else {
                throw CheckpointError(.invalidArgument, "'\(path)' holds \(ValueRepr.short(value)), expected a dict (a state dict)")
            }
            return .leaf(.value(value))
        }
    }

    // MARK: - safetensors input

    func safetensorsTree(_ reader: FileRangeReader) async throws -> StateTree<Leaf> {
        let path = reader.path
        let prefix = try await reader.read(0, 8)
        let header: SafetensorsHeader
        do {
            let need = try prefix.withUnsafeBytes { raw throws(FormatError) in try SafetensorsHeader.headerBytesNeeded(prefix: raw) }
            guard need <= reader.size else {
                throw CheckpointError(.corrupt, "'\(path)' is \(reader.size) bytes, its safetensors header needs \(need)")
            }
            let bytes = try await reader.read(0, need)
            header = try SafetensorsHeader.parse(bytes, dataLength: reader.size - need)
        } catch let error as FormatError {
            throw CheckpointError(.corrupt, "'\(path)': \(error.at(file: path))", underlying: error)
        }
        return .dict(header.entries.map { e in
            (e.name, .leaf(.tensor(InputTensor(dtype: e.dtype, shape: e.shape, fileOffset: header.dataOffset + e.dataRange.lowerBound))))
        })
    }
}
