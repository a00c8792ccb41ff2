public import CkptIO
import CkptFormat
import Foundation

/// What a checkpoint directory holds (PyTorch's or ours), for `ckpt inspect`.
public struct CheckpointInspection: Sendable, Codable {
    /// One tensor.
    public struct Tensor: Sendable, Codable {
        public var fqn: String
        public var dtype: String
        /// Global shape.
        public var shape: [Int]
        /// Saved chunks.
        public var chunks: Int
        /// Data files holding its chunks.
        public var files: [String]
        /// Bytes of the global tensor.
        public var bytes: Int
    }

    /// One non-tensor value.
    public struct Value: Sendable, Codable {
        public var fqn: String
        /// Python type name, or `undecodable`.
        public var type: String
        /// Short Python-like repr (or why it could not be decoded).
        public var repr: String
        public var file: String
        /// Bytes of its BYTE_IO record.
        public var bytes: Int
    }

    /// One data file.
    public struct File: Sendable, Codable {
        public var name: String
        public var bytes: Int
    }

    public var directory: String
    /// Number of distinct ranks among the `__{rank}_{i}.distcp` files the metadata references.
    public var worldSize: Int
    /// `torch_save` (zip records), `safetensors` (DCP's safetensors variant), `mixed` or `empty`.
    public var formatVariant: String
    public var dcpVersion: String?
    public var saveID: String?
    /// Whether a `.ckpt-checksums.json` sidecar is present, and whether it belongs to this save.
    public var hasChecksums: Bool
    public var checksumsMatchSave: Bool
    /// The binary index (`.ckpt-index`): `current` (it matches `.metadata` and the sidecar, and
    /// loads use it), `stale` (present but ignored) or `none`.
    public var index: String
    /// Whether a Lightning `meta.pt` sits next to `.metadata`.
    public var hasLightningMeta: Bool
    public var tensors: [Tensor]
    public var values: [Value]
    public var files: [File]
    public var totalTensorBytes: Int
    public var totalChunks: Int
    public var totalFileBytes: Int

    /// Reads `.metadata`, decodes every value with the safe reader and looks at the first bytes
    /// of each data file; tensor payloads are not read.
    public static func inspect(_ directory: String, engine: IOEngine) async throws -> CheckpointInspection {
        let directory = ToolPaths.normalized(directory)
        try ToolPaths.requireDirectory(directory)
        let reader = try await CheckpointReader(directory: directory, engine: engine)
        let metadata = reader.metadata
        let fm = FileManager.default
        var result = CheckpointInspection(
            directory: directory, worldSize: 0, formatVariant: "empty", dcpVersion: metadata.version,
            saveID: metadata.storageMeta?.saveID, hasChecksums: false, checksumsMatchSave: false,
            index: reader.metadataFromIndex
                ? "current" : fm.fileExists(atPath: directory + "/" + CommittedIndex.fileName) ? "stale" : "none",
            hasLightningMeta: fm.fileExists(atPath: directory + "/meta.pt"), tensors: [], values: [], files: [],
            totalTensorBytes: 0, totalChunks: 0, totalFileBytes: 0)

        let sidecarPath = directory + "/" + Checkpointer.checksumFileName
        if fm.fileExists(atPath: sidecarPath) {
            result.hasChecksums = true
            if let bytes = try? await Checkpointer.readWholeFile(sidecarPath, engine: engine),
                let sidecar = try? ChecksumSidecar.decode(bytes, path: sidecarPath)
            {
                result.checksumsMatchSave = sidecar.saveID == metadata.storageMeta?.saveID
            }
        }

        // Files referenced, with the first record of each (for the format variant).
        var firstRecord: [String: Int] = [:]
        var files = Set<String>()
        for (index, info) in metadata.storageData.entries {
            files.insert(info.relativePath)
            // Values are torch.save archives in both variants: look at tensor records only.
            guard index.offset != nil else { continue }
            firstRecord[info.relativePath] = min(firstRecord[info.relativePath] ?? Int.max, info.offset)
        }
        var ranks = Set<Int>()
        var variants = Set<String>()
        for name in files.sorted() {
            if let rank = ToolPaths.rank(ofDataFile: name) { ranks.insert(rank) }
            let path = directory + "/" + name
            let size = (try? fm.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
            result.files.append(File(name: name, bytes: size ?? 0))
            result.totalFileBytes += size ?? 0
            if let offset = firstRecord[name], let size, size >= offset + 4, let r = try? FileRangeReader(engine: engine, path: path) {
                defer { r.close() }
                if let magic = try? await r.read(offset, 4) {
                    variants.insert(magic == [0x50, 0x4B, 0x03, 0x04] ? "torch_save" : "safetensors")
                }
            }
        }
        result.worldSize = ranks.count
        result.formatVariant = variants.count > 1 ? "mixed" : variants.first ?? "empty"

        for (fqn, entry) in metadata.stateDictMetadata.entries {
            switch entry {
            case .tensor(let t):
                var files: [String] = []
                for chunk in t.chunks {
                    if let info = metadata.storage(fqn: fqn, offsets: chunk.offsets), !files.contains(info.relativePath) {
                        files.append(info.relativePath)
                    }
                }
                let bytes = t.size.reduce(1, *) * t.properties.dtype.itemSize
                result.tensors.append(Tensor(
                    fqn: fqn, dtype: t.properties.dtype.torchName, shape: t.size, chunks: t.chunks.count, files: files.sorted(),
                    bytes: bytes))
                result.totalTensorBytes += bytes
                result.totalChunks += t.chunks.count
            case .bytes:
                let info = metadata.storage(fqn: fqn, offsets: nil)
                var value = Value(fqn: fqn, type: "undecodable", repr: "", file: info?.relativePath ?? "?", bytes: info?.length ?? 0)
                var request = StateDict()
                request.set(fqn, .value(.none))
                do {
                    if let v = try await reader.load(into: request).values[fqn] {
                        value.type = ValueRepr.typeName(v)
                        value.repr = ValueRepr.short(v)
                    }
                } catch {
                    value.repr = ToolError.oneLine(error)
                }
                result.values.append(value)
            }
        }
        return result
    }

    /// JSON text (sorted keys, pretty-printed).
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// A readable listing: tensors, values, files and totals.
    public func table() -> String {
        var lines: [String] = []
        lines.append("checkpoint   \(directory)")
        lines.append("format       DCP \(dcpVersion ?? "?"), \(formatVariant) records, saved by \(worldSize) rank\(worldSize == 1 ? "" : "s")")
        lines.append("checksums    \(hasChecksums ? (checksumsMatchSave ? "yes (.ckpt-checksums.json)" : "STALE (sidecar of another save)") : "no")")
        lines.append("index        \(index == "current" ? "yes (.ckpt-index)" : index == "stale" ? "STALE (.ckpt-index of other files: ignored)" : "no")")
        lines.append("lightning    \(hasLightningMeta ? "yes (meta.pt)" : "no")")
        lines.append("")
        let tensorRows = tensors.map { t in
            [t.fqn, t.dtype, "[" + t.shape.map(String.init).joined(separator: ", ") + "]", String(t.chunks),
             Self.fileList(t.files), ByteCount.format(t.bytes)]
        }
        lines += Self.grid(header: ["tensor", "dtype", "shape", "chunks", "files", "bytes"], rows: tensorRows, rightAligned: [3, 5])
        if !values.isEmpty {
            lines.append("")
            lines += Self.grid(
                header: ["value", "type", "repr", "file", "bytes"],
                rows: values.map { [$0.fqn, $0.type, $0.repr, $0.file, ByteCount.format($0.bytes)] }, rightAligned: [4])
        }
        lines.append("")
        lines += Self.grid(header: ["file", "bytes"], rows: files.map { [$0.name, ByteCount.format($0.bytes)] }, rightAligned: [1])
        lines.append("")
        lines.append(
            "total        \(tensors.count) tensors (\(totalChunks) chunks, \(ByteCount.format(totalTensorBytes))), "
                + "\(values.count) values, \(files.count) files (\(ByteCount.format(totalFileBytes)))")
        return lines.joined(separator: "\n")
    }

    static func fileList(_ files: [String]) -> String {
        files.count <= 2 ? files.joined(separator: ",") : "\(files[0]),… (\(files.count))"
    }

    static func grid(header: [String], rows: [[String]], rightAligned: Set<Int>) -> [String] {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return [line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)
    }
}
