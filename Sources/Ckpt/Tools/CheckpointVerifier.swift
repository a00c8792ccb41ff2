import CCkptHash
import CkptFormat
public import CkptIO
import Foundation

/// Checks a checkpoint directory without loading it, for `ckpt verify`.
///
/// Structure: `.metadata` decodes; every chunk's file exists and is long enough; each tensor's
/// chunks tile it exactly once; every record parses (a tensor record's whole zip structure, its
/// dtype and shape against the metadata, its zip CRC-32s; DCP's safetensors variant; BYTE_IO
/// values decode with the safe reader). Content, when a `.ckpt-checksums.json` of this save
/// exists: the XXH3-64 of every payload. Every problem is recorded (up to `maxProblems`) with its
/// file and offset, and checking goes on. Records are read in pieces of at most `pieceBytes`, so
/// memory stays bounded.
public struct CheckpointVerifier: Sendable {
    public let engine: IOEngine
    public let pieceBytes: Int
    public let maxProblems: Int

    public init(engine: IOEngine, pieceBytes: Int = 8 << 20, maxProblems: Int = 100) {
        self.engine = engine
        self.pieceBytes = max(pieceBytes, 1 << 16)
        self.maxProblems = max(maxProblems, 1)
    }

    /// Verifies `directory`. Throws only when it is not a directory; everything else is a problem
    /// in the report.
    public func verify(_ directory: String, progress: ToolProgress? = nil) async throws -> VerificationReport {
        let directory = ToolPaths.normalized(directory)
        try ToolPaths.requireDirectory(directory)
        var run = VerificationRun(directory: directory, engine: engine, pieceBytes: pieceBytes, maxProblems: maxProblems, progress: progress)
        await run.run()
        progress?.finish()
        return run.report
    }
}

/// The state of one verification.
struct VerificationRun {
    let directory: String
    let engine: IOEngine
    let pieceBytes: Int
    let maxProblems: Int
    let progress: ToolProgress?
    var report: VerificationReport
    private var readers: [String: FileRangeReader] = [:]
    private var missing: Set<String> = []
    private var sidecar: [String: ChecksumSidecar.Entry] = [:]
    private var sidecarUsed: Set<String> = []
    private var doneBytes = 0
    private var totalBytes = 0

    init(directory: String, engine: IOEngine, pieceBytes: Int, maxProblems: Int, progress: ToolProgress?) {
        self.directory = directory
        self.engine = engine
        self.pieceBytes = pieceBytes
        self.maxProblems = maxProblems
        self.progress = progress
        report = VerificationReport(
            directory: directory, problems: [], omittedProblems: 0, tensorRecords: 0, valueRecords: 0, bytesHashed: 0,
            hasChecksums: false, checksumsVerified: 0)
    }

    mutating func problem(_ file: String?, _ offset: Int?, _ message: String) {
        if report.problems.count < maxProblems {
            report.problems.append(VerificationProblem(file: file, offset: offset, message: message))
        } else {
            report.omittedProblems += 1
        }
    }

    static func key(_ fqn: String, _ offsets: [Int]?) -> String {
        fqn + "@" + (offsets.map { $0.map(String.init).joined(separator: ",") } ?? "value")
    }

    mutating func run() async {
        defer { for r in readers.values { r.close() } }
        let metadataPath = directory + "/" + Checkpointer.metadataFileName
        guard FileManager.default.fileExists(atPath: metadataPath) else {
            problem(Checkpointer.metadataFileName, nil, "missing: no committed checkpoint (an interrupted save, or not a DCP checkpoint)")
            return
        }
        let metadata: DCPMetadata
        do {
            metadata = try DCPMetadata(decoding: try await Checkpointer.readWholeFile(metadataPath, engine: engine))
        } catch let error as FormatError {
            problem(Checkpointer.metadataFileName, error.offset, "does not decode: \(error.message)")
            return
        } catch {
            problem(Checkpointer.metadataFileName, nil, "cannot be read: \(ToolError.oneLine(error))")
            return
        }
        if let bounds = metadata.boundsProblem() {
            problem(Checkpointer.metadataFileName, nil, bounds)
            return
        }
        await loadSidecar(saveID: metadata.storageMeta?.saveID)

        // Chunks tile their tensors and have records.
        var known = Set<MetadataIndex>()
        for (fqn, entry) in metadata.stateDictMetadata.entries {
            switch entry {
            case .bytes:
                known.insert(MetadataIndex(fqn: fqn, offset: nil))
                if metadata.storage(fqn: fqn, offsets: nil) == nil {
                    problem(Checkpointer.metadataFileName, nil, "value '\(fqn)' has no record in storage_data")
                }
            case .tensor(let t):
                if let why = ChunkTiling.problem(shape: t.size, chunks: t.chunks.map { ($0.offsets, $0.sizes) }) {
                    problem(Checkpointer.metadataFileName, nil, "tensor '\(fqn)' \(t.size): \(why)")
                }
                for chunk in t.chunks {
                    known.insert(MetadataIndex(fqn: fqn, offset: chunk.offsets))
                    if metadata.storage(fqn: fqn, offsets: chunk.offsets) == nil {
                        problem(Checkpointer.metadataFileName, nil, "chunk \(chunk.offsets) of '\(fqn)' has no record in storage_data")
                    }
                }
            }
        }
        for index in metadata.storageData.keys where !known.contains(index) {
            problem(Checkpointer.metadataFileName, nil, "storage_data names '\(index.fqn)' at \(index.offset.map { "\($0)" } ?? "(value)"), which state_dict_metadata lacks")
        }
        totalBytes = metadata.storageData.values.reduce(0) { $0 + $1.length }

        // Records.
        for (fqn, entry) in metadata.stateDictMetadata.entries {
            switch entry {
            case .bytes:
                guard let info = metadata.storage(fqn: fqn, offsets: nil) else { continue }
                await checkValue(fqn: fqn, info: info)
            case .tensor(let t):
                for chunk in t.chunks {
                    guard let info = metadata.storage(fqn: fqn, offsets: chunk.offsets) else { continue }
                    await checkTensor(fqn: fqn, dtype: t.properties.dtype, chunk: chunk, info: info)
                }
            }
        }
        for (key, entry) in sidecar where !sidecarUsed.contains(key) {
            problem(Checkpointer.checksumFileName, nil, "checksum of '\(entry.fqn)' at \(entry.offsets.map { "\($0)" } ?? "(value)") matches no record of .metadata")
        }
    }

    mutating func loadSidecar(saveID: String?) async {
        let path = directory + "/" + Checkpointer.checksumFileName
        guard FileManager.default.fileExists(atPath: path) else { return }
        do {
            let decoded = try ChecksumSidecar.decode(try await Checkpointer.readWholeFile(path, engine: engine), path: path)
            guard decoded.saveID == saveID else {
                problem(Checkpointer.checksumFileName, nil, "belongs to save \(decoded.saveID), .metadata is save \(saveID ?? "(none)"): content not checked")
                return
            }
            for e in decoded.entries { sidecar[Self.key(e.fqn, e.offsets)] = e }
            report.hasChecksums = true
        } catch {
            problem(Checkpointer.checksumFileName, nil, ToolError.oneLine(error))
        }
    }

    /// The reader of a data file, or nil (problem recorded once) when it is missing.
    mutating func reader(_ name: String) -> FileRangeReader? {
        if let r = readers[name] { return r }
        if missing.contains(name) { return nil }
        do {
            guard !name.contains("..") else { throw CheckpointError(.corrupt, "file name escapes the checkpoint") }
            let r = try FileRangeReader(engine: engine, path: directory + "/" + name)
            readers[name] = r
            return r
        } catch {
            missing.insert(name)
            problem(name, nil, FileManager.default.fileExists(atPath: directory + "/" + name) ? ToolError.oneLine(error) : "missing (referenced by .metadata)")
            return nil
        }
    }

    mutating func advance(_ n: Int) {
        doneBytes += n
        progress?.update(done: doneBytes, total: totalBytes)
    }

    /// Checks the sidecar's entry for a record against what was found and hashed.
    @discardableResult
    mutating func compareChecksum(fqn: String, offsets: [Int]?, file: String, payloadOffset: Int, payloadLength: Int, hash: UInt64?) -> Bool {
        guard report.hasChecksums else { return false }
        // The engine records 0 for an empty payload.
        let hash = payloadLength == 0 ? 0 : hash
        let key = Self.key(fqn, offsets)
        guard let entry = sidecar[key] else {
            problem(file, payloadOffset, "'\(fqn)' \(offsets.map { "chunk \($0)" } ?? "value") has no checksum in \(Checkpointer.checksumFileName)")
            return false
        }
        sidecarUsed.insert(key)
        guard entry.file == file, entry.payloadOffset == payloadOffset, entry.payloadLength == payloadLength else {
            problem(file, payloadOffset, "'\(fqn)' payload is at \(file) \(payloadOffset) (\(payloadLength) bytes), the sidecar says \(entry.file) \(entry.payloadOffset) (\(entry.payloadLength) bytes)")
            return true
        }
        guard let hash else { return false }
        if entry.hash == hash {
            report.checksumsVerified += 1
            return false
        } else {
            problem(file, payloadOffset, "XXH3 of '\(fqn)' \(offsets.map { "chunk \($0)" } ?? "value") payload is \(String(hash, radix: 16)), the sidecar says \(entry.xxh3): content corrupted")
            return true
        }
    }

    /// Hashes `length` bytes at `offset` in pieces: CRC-32 and XXH3-64.
    mutating func hashRange(_ r: FileRangeReader, offset: Int, length: Int) async throws -> (crc: UInt32, xxh3: UInt64) {
        let piece = TensorBuffer(uninitializedByteCount: min(max(length, 1), pieceBytes))
        let hasher = try StreamingXXH3()
        var crc: UInt32 = 0
        var done = 0
        while done < length {
            let n = min(piece.count, length - done)
            let bytes = UnsafeMutableRawBufferPointer(rebasing: piece.bytes[..<n])
            try await r.read(offset + done, into: bytes)
            crc = ckpt_crc32_update(crc, bytes.baseAddress, n)
            hasher.update(UnsafeRawBufferPointer(bytes))
            done += n
            advance(n)
        }
        report.bytesHashed += length
        return (crc, hasher.digest())
    }

    mutating func checkValue(fqn: String, info: StorageInfo) async {
        guard let r = reader(info.relativePath) else { return }
        guard info.offset >= 0, info.length >= 0, info.offset + info.length <= r.size else {
            problem(info.relativePath, info.offset, "value '\(fqn)': record of \(info.length) bytes ends at \(info.offset + info.length), the file has \(r.size) bytes (truncated?)")
            return
        }
        guard info.length <= 256 << 20 else {
            problem(info.relativePath, info.offset, "value '\(fqn)': record of \(info.length) bytes is too large to decode")
            return
        }
        do {
            let record = try await r.read(info.offset, info.length)
            advance(info.length)
            report.bytesHashed += info.length
            let hash = record.withUnsafeBytes { ckpt_xxh3_64($0.baseAddress, $0.count) }
            do {
                _ = try ByteIORecord.decode(record)
                try Self.checkCRCs(record)
                report.valueRecords += 1
            } catch {
                problem(info.relativePath, info.offset + error.offset, "value '\(fqn)': BYTE_IO record does not decode: \(error.message)")
            }
            compareChecksum(fqn: fqn, offsets: nil, file: info.relativePath, payloadOffset: info.offset, payloadLength: info.length, hash: hash)
        } catch {
            problem(info.relativePath, info.offset, "value '\(fqn)': \(ToolError.oneLine(error))")
        }
    }

    /// Zip CRC-32 of every entry with a recorded CRC (torch may write 0 when not computing it).
    static func checkCRCs(_ record: [UInt8]) throws(FormatError) {
        let archive = try ZipArchive(parsing: record)
        var failure: FormatError?
        record.withUnsafeBytes { raw in
            for entry in archive.entries where entry.crc32 != 0 || entry.size == 0 {
                do throws(FormatError) { try ZipArchive.verifyCRC(entry, in: raw) } catch {
                    failure = error
                    return
                }
            }
        }
        if let failure { throw failure }
    }

    mutating func checkTensor(fqn: String, dtype: DType, chunk: ChunkStorageMetadata, info: StorageInfo) async {
        let file = info.relativePath
        let what = "'\(fqn)' chunk \(chunk.offsets)"
        guard let r = reader(file) else { return }
        let expected = chunk.sizes.reduce(1, *) * dtype.itemSize
        guard info.offset >= 0, info.length >= 0, info.offset + info.length <= r.size else {
            problem(file, info.offset, "\(what): record of \(info.length) bytes ends at \(info.offset + info.length), the file has \(r.size) bytes (truncated?)")
            return
        }
        do {
            let magic = try await r.read(info.offset, min(4, info.length))
            if magic == [0x50, 0x4B, 0x03, 0x04] {
                if info.length <= pieceBytes {
                    try await checkSmallRecord(r, fqn: fqn, dtype: dtype, chunk: chunk, info: info, expected: expected)
                } else {
                    try await checkLargeRecord(r, fqn: fqn, dtype: dtype, chunk: chunk, info: info, expected: expected)
                }
            } else {
                try await checkSafetensorsRecord(r, fqn: fqn, dtype: dtype, chunk: chunk, info: info, expected: expected)
            }
        } catch let error as VerificationFailure {
            problem(file, error.offset, "\(what): \(error.message)")
        } catch {
            problem(file, info.offset, "\(what): \(ToolError.oneLine(error))")
        }
    }

    struct VerificationFailure: Error {
        var offset: Int
        var message: String
    }

    func checkView(_ tensor: TensorReference, tensorRange: Range<Int>, dtype: DType, chunk: ChunkStorageMetadata, expected: Int, at: Int) throws {
        guard tensor.dtype == dtype else {
            throw VerificationFailure(offset: at, message: "record holds \(tensor.dtype.torchName), metadata says \(dtype.torchName)")
        }
        guard tensor.shape == chunk.sizes || (tensor.elementCount == 0 && expected == 0) else {
            throw VerificationFailure(offset: at, message: "record holds shape \(tensor.shape), metadata says \(chunk.sizes)")
        }
        guard tensor.isContiguous, tensorRange.count == expected else {
            throw VerificationFailure(offset: at, message: "record's tensor spans \(tensorRange.count) bytes (contiguous: \(tensor.isContiguous)), expected \(expected)")
        }
    }

    mutating func checkSmallRecord(
        _ r: FileRangeReader, fqn: String, dtype: DType, chunk: ChunkStorageMetadata, info: StorageInfo, expected: Int
    ) async throws {
        let record = try await r.read(info.offset, info.length)
        advance(info.length)
        let parsed: TensorRecord
        do {
            parsed = try TorchTensorRecord.read(record)
        } catch {
            throw VerificationFailure(offset: info.offset + error.offset, message: "record does not parse: \(error.message)")
        }
        try checkView(parsed.tensor, tensorRange: parsed.tensorRange, dtype: dtype, chunk: chunk, expected: expected, at: info.offset)
        report.tensorRecords += 1
        report.bytesHashed += parsed.tensorRange.count
        let hash = record.withUnsafeBytes { raw in
            ckpt_xxh3_64(raw.baseAddress.map { $0 + parsed.tensorRange.lowerBound }, parsed.tensorRange.count)
        }
        let mismatch = compareChecksum(
            fqn: fqn, offsets: chunk.offsets, file: info.relativePath, payloadOffset: info.offset + parsed.tensorRange.lowerBound,
            payloadLength: parsed.tensorRange.count, hash: hash)
        guard !mismatch else { return }
        do {
            try Self.checkCRCs(record)
        } catch {
            throw VerificationFailure(offset: info.offset + error.offset, message: "record does not parse: \(error.message)")
        }
    }

    mutating func checkLargeRecord(
        _ r: FileRangeReader, fqn: String, dtype: DType, chunk: ChunkStorageMetadata, info: StorageInfo, expected: Int
    ) async throws {
        // Locate the tensor from the head, parse the central directory from the tail, then stream.
        var headBytes = min(info.length, 4096)
        var located: TensorRecord?
        for _ in 0..<12 where located == nil {
            let head = try await r.read(info.offset, headBytes)
            let location: TensorRecordLocation
            do {
                location = try head.withUnsafeBytes { raw throws(FormatError) in
                    try TorchTensorRecord.locate(head: raw, recordLength: info.length)
                }
            } catch let error as FormatError {
                throw VerificationFailure(offset: info.offset + error.offset, message: "record does not parse: \(error.message)")
            }
            switch location {
            case .located(let record): located = record
            case .needMoreHead(let n): headBytes = min(info.length, max(n, headBytes * 2))
            }
        }
        guard let record = located else {
            throw VerificationFailure(offset: info.offset, message: "record header does not end within \(headBytes) bytes")
        }
        try checkView(record.tensor, tensorRange: record.tensorRange, dtype: dtype, chunk: chunk, expected: expected, at: info.offset)
        let directory = try await r.centralDirectory(archive: info.offset..<(info.offset + info.length))
        let storageName = record.prefix + "/data/" + record.tensor.storageKey
        guard let entry = directory.entries.first(where: { $0.name == storageName }) else {
            throw VerificationFailure(offset: info.offset + directory.centralDirectoryOffset, message: "central directory has no '\(storageName)'")
        }
        let payload = try await r.payloadOffset(of: entry, archiveStart: info.offset) - info.offset
        guard payload == record.storageRange.lowerBound, entry.size == record.storageRange.count else {
            throw VerificationFailure(
                offset: info.offset + directory.centralDirectoryOffset,
                message: "central directory puts '\(storageName)' at \(payload) (\(entry.size) bytes), the local headers at \(record.storageRange.lowerBound) (\(record.storageRange.count) bytes)")
        }
        for other in directory.entries where other.name != storageName && other.size > pieceBytes {
            throw VerificationFailure(offset: info.offset + other.localHeaderOffset, message: "unexpected large entry '\(other.name)' (\(other.size) bytes)")
        }
        let (crc, hash) = try await hashRange(r, offset: info.offset + record.tensorRange.lowerBound, length: record.tensorRange.count)
        report.tensorRecords += 1
        let mismatch = compareChecksum(
            fqn: fqn, offsets: chunk.offsets, file: info.relativePath, payloadOffset: info.offset + record.tensorRange.lowerBound,
            payloadLength: record.tensorRange.count, hash: hash)
        if !mismatch, entry.crc32 != 0, record.tensorRange == record.storageRange, crc != entry.crc32 {
            throw VerificationFailure(
                offset: info.offset + record.tensorRange.lowerBound,
                message: "CRC-32 of the payload is \(String(crc, radix: 16)), the central directory says \(String(entry.crc32, radix: 16))")
        }
    }

    mutating func checkSafetensorsRecord(
        _ r: FileRangeReader, fqn: String, dtype: DType, chunk: ChunkStorageMetadata, info: StorageInfo, expected: Int
    ) async throws {
        guard info.offset + 8 <= r.size else {
            throw VerificationFailure(offset: info.offset, message: "neither a zip record nor a safetensors blob (file ends)")
        }
        let prefix = try await r.read(info.offset, 8)
        let blob: DCPSafetensorsBlob
        let entry: SafetensorsEntry
        do {
            let need = try prefix.withUnsafeBytes { raw throws(FormatError) in try SafetensorsHeader.headerBytesNeeded(prefix: raw) }
            guard info.offset + need <= r.size else {
                throw VerificationFailure(offset: info.offset, message: "safetensors header of \(need) bytes runs past the end of the file")
            }
            let header = try await r.read(info.offset, need)
            blob = try DCPSafetensorsBlob(parsing: header)
            entry = try blob.chunk(fqn: fqn, offsets: chunk.offsets)
        } catch let error as FormatError {
            throw VerificationFailure(offset: info.offset + error.offset, message: "neither a zip record nor a valid safetensors blob: \(error.message)")
        }
        guard entry.dtype == dtype, entry.shape == chunk.sizes, entry.dataRange.count == expected else {
            throw VerificationFailure(
                offset: info.offset,
                message: "safetensors entry is \(entry.dtype.torchName) \(entry.shape), metadata says \(dtype.torchName) \(chunk.sizes)")
        }
        let start = info.offset + blob.header.dataOffset + entry.dataRange.lowerBound
        guard start + expected <= r.size else {
            throw VerificationFailure(offset: start, message: "payload of \(expected) bytes runs past the end of the file (\(r.size) bytes)")
        }
        let (_, hash) = try await hashRange(r, offset: start, length: expected)
        report.tensorRecords += 1
        compareChecksum(fqn: fqn, offsets: chunk.offsets, file: info.relativePath, payloadOffset: start, payloadLength: expected, hash: hash)
    }
}
