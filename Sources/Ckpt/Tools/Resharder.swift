import CkptFormat
public import CkptIO
import CkptPlan
import Foundation

/// What a reshard wrote.
public struct ReshardReport: Sendable {
    public var output: String
    /// World size of the written checkpoint.
    public var ranks: Int
    public var tensorCount: Int
    public var valueCount: Int
    /// Tensor chunks (records) written.
    public var chunkCount: Int
    public var tensorBytes: Int
    /// Bytes of every data file.
    public var fileBytes: Int
    /// Peak bytes held: the piece buffer plus the engine's pool at its peak.
    public var peakWorkingBytes: Int
}

/// Rewrites a checkpoint as if saved by another number of ranks (or with another checkpoint's
/// layout), offline and streaming.
///
/// Memory is bounded by one piece buffer (`pieceBytes`) plus the I/O engine's pool, whatever the
/// checkpoint's size: each target rank's data file is written record by record; each record's
/// payload is loaded block by block from the source with ``CheckpointReader`` (any saved layout)
/// into the piece buffer and appended. Values are copied byte for byte into rank 0's file. The
/// result is committed like an engine save (with a checksum sidecar) under a temporary name and
/// renamed to `output` at the end.
public struct Resharder: Sendable {
    public let engine: IOEngine
    public let pieceBytes: Int
    /// Write the `.ckpt-checksums.json` sidecar.
    public let writeChecksums: Bool

    public init(engine: IOEngine, pieceBytes: Int = 32 << 20, writeChecksums: Bool = true) {
        self.engine = engine
        self.pieceBytes = max(pieceBytes, 1 << 16)
        self.writeChecksums = writeChecksums
    }

    /// Rewrites `directory` into the new directory `output` with `layout`.
    public func reshard(
        _ directory: String, to output: String, layout: ReshardLayout, overwrite: Bool = false,
        progress: ToolProgress? = nil
    ) async throws -> ReshardReport {
        let directory = ToolPaths.normalized(directory)
        try ToolPaths.requireDirectory(directory)
        if ToolPaths.absolute(output) == ToolPaths.absolute(directory) {
            throw CheckpointError(.invalidArgument, "the output must differ from the input '\(directory)'")
        }
        engine.buffers.resetPeak()
        let reader = try await CheckpointReader(directory: directory, engine: engine)
        let metadata = reader.metadata
        let plan = try await makePlan(metadata: metadata, directory: directory, layout: layout)
        let writer = ShardedCheckpointWriter(engine: engine, pieceBytes: pieceBytes, writeChecksums: writeChecksums)
        // Each batch of blocks loads in one pipeline (reads of every file in flight together).
        let summary = try await writer.write(plan, to: output, overwrite: overwrite, fill: { blocks, buffer in
            _ = try await reader.load(into: StateDict(blocks: blocks, in: buffer))
        }, progress: progress)
        progress?.finish()
        var report = ReshardReport(
            output: ToolPaths.normalized(output), ranks: plan.ranks, tensorCount: 0, valueCount: 0, chunkCount: 0,
            tensorBytes: summary.tensorBytes, fileBytes: summary.fileBytes,
            peakWorkingBytes: pieceBytes + engine.buffers.peakHeldBytes)
        for entry in plan.entries {
            switch entry {
            case .tensor(_, _, _, let chunks):
                report.tensorCount += 1
                report.chunkCount += chunks.count
            case .value: report.valueCount += 1
            }
        }
        return report
    }

    func makePlan(metadata: DCPMetadata, directory: String, layout: ReshardLayout) async throws -> OutputPlan {
        var ranks: Int
        var templateChunks: [String: (dtype: DType, shape: [Int], chunks: [PlannedChunk])] = [:]
        switch layout {
        case .rowSplit(let n):
            guard n >= 1 else { throw CheckpointError(.invalidArgument, "--ranks must be at least 1, got \(n)") }
            ranks = n
        case .like(let template):
            let t = try await CheckpointReader(directory: ToolPaths.normalized(template), engine: engine).metadata
            ranks = 1
            for info in t.storageData.values {
                guard let rank = ToolPaths.rank(ofDataFile: info.relativePath) else {
                    throw CheckpointError(
                        .invalidArgument, "template '\(template)': data file '\(info.relativePath)' is not named __{rank}_{i}.distcp")
                }
                ranks = max(ranks, rank + 1)
            }
            for (fqn, entry) in t.stateDictMetadata.entries {
                guard case .tensor(let tensor) = entry else { continue }
                var chunks: [PlannedChunk] = []
                for chunk in tensor.chunks {
                    guard let info = t.storage(fqn: fqn, offsets: chunk.offsets),
                        let rank = ToolPaths.rank(ofDataFile: info.relativePath)
                    else {
                        throw CheckpointError(.invalidArgument, "template '\(template)': chunk \(chunk.offsets) of '\(fqn)' has no record")
                    }
                    chunks.append(PlannedChunk(rank: rank, offsets: chunk.offsets, sizes: chunk.sizes))
                }
                if let problem = ChunkTiling.problem(shape: tensor.size, chunks: chunks.map { ($0.offsets, $0.sizes) }) {
                    throw CheckpointError(.invalidArgument, "template '\(template)': tensor '\(fqn)': \(problem)")
                }
                templateChunks[fqn] = (tensor.properties.dtype, tensor.size, chunks)
            }
        }
        var entries: [PlannedEntry] = []
        for (fqn, entry) in metadata.stateDictMetadata.entries {
            switch entry {
            case .bytes:
                guard let info = metadata.storage(fqn: fqn, offsets: nil) else {
                    throw CheckpointError(.corrupt, "'\(directory)/.metadata': value '\(fqn)' has no record")
                }
                let record = try await readRange(directory + "/" + info.relativePath, offset: info.offset, length: info.length)
                entries.append(.value(fqn: fqn, record: record))
            case .tensor(let tensor):
                let chunks: [PlannedChunk]
                if let t = templateChunks[fqn] {
                    guard t.shape == tensor.size, t.dtype == tensor.properties.dtype else {
                        throw CheckpointError(
                            .mismatch,
                            "tensor '\(fqn)' is \(tensor.properties.dtype) \(tensor.size), the template has \(t.dtype) \(t.shape)")
                    }
                    chunks = t.chunks
                } else {
                    chunks = Self.rowSplit(shape: tensor.size, ranks: ranks)
                }
                entries.append(.tensor(fqn: fqn, dtype: tensor.properties.dtype, shape: tensor.size, chunks: chunks))
            }
        }
        var plannerData = OrderedMap<String, [PlannerPathElement]>()
        for (fqn, _) in metadata.stateDictMetadata.entries {
            plannerData[fqn] = metadata.plannerData?[fqn] ?? [.key(fqn)]
        }
        return OutputPlan(ranks: ranks, entries: entries, plannerData: plannerData)
    }

    /// `torch.chunk`-style row split of `shape` over `ranks` (ranks past the last chunk hold
    /// nothing); 0-d and row-less tensors are one chunk on rank 0.
    static func rowSplit(shape: [Int], ranks: Int) -> [PlannedChunk] {
        guard let rows = shape.first, rows > 0, ranks > 1 else {
            return [PlannedChunk(rank: 0, offsets: Array(repeating: 0, count: shape.count), sizes: shape)]
        }
        let step = (rows + ranks - 1) / ranks
        var chunks: [PlannedChunk] = []
        var start = 0
        var rank = 0
        while start < rows {
            let n = min(step, rows - start)
            chunks.append(PlannedChunk(
                rank: rank, offsets: [start] + Array(repeating: 0, count: shape.count - 1), sizes: [n] + shape.dropFirst()))
            start += n
            rank += 1
        }
        return chunks
    }

    /// Reads a small byte range (a BYTE_IO record).
    func readRange(_ path: String, offset: Int, length: Int) async throws -> [UInt8] {
        let file: IOFile
        do {
            file = try engine.open(path, mode: .read, direct: false)
        } catch {
            throw CheckpointError(.corrupt, "cannot open '\(path)': \(ToolError.oneLine(error))", underlying: error)
        }
        defer { try? engine.close(file) }
        let buffer = TensorBuffer(uninitializedByteCount: length)
        do {
            try await engine.read(file, at: Int64(offset), into: buffer.bytes)
        } catch {
            throw CheckpointError(.corrupt, "'\(path)': cannot read \(length) bytes at offset \(offset): \(ToolError.oneLine(error))", underlying: error)
        }
        return Array(buffer.bytes)
    }
}
