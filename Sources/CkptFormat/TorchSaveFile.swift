/// A whole torch.save zip archive parsed from memory (a `.pt` file, a BYTE_IO record or a tensor
/// record): the object tree with tensors as ``TensorReference``s and where each storage's bytes are.
public struct TorchSaveFile: Sendable {
    /// One `data/<key>` storage record.
    public struct Storage: Sendable, Equatable {
        /// Storage key (record `data/<key>`).
        public var key: String
        /// Element type (from the tensors that use it).
        public var dtype: DType
        /// Byte range of the storage payload within the parsed buffer.
        public var byteRange: Range<Int>
        /// CRC-32 from the central directory.
        public var crc32: UInt32
    }

    /// The zip structure.
    public var archive: ZipArchive
    /// The unpickled `data.pkl` value.
    public var value: TorchValue
    /// Storages referenced by tensors, in first-encounter order.
    public var storages: [Storage]
    /// The `version` record value (torch.save writes 3).
    public var version: Int

    /// Storage for `key`.
    public func storage(_ key: String) -> Storage? { storages.first { $0.key == key } }

    /// Parses and validates an archive: zip structure, `data.pkl` through the safe reader, version,
    /// byte order, and every tensor's view against its storage record.
    public init(parsing buffer: UnsafeRawBufferPointer, reader: PickleReader = PickleReader()) throws(FormatError) {
        let archive = try ZipArchive(parsing: buffer)
        guard let pkl = archive.record("data.pkl") else {
            throw FormatError(.invalidRecord, "archive '\(archive.prefix)' has no data.pkl", offset: 0)
        }
        guard let versionEntry = archive.record("version") ?? archive.record(".data/version") else {
            throw FormatError(.invalidRecord, "archive '\(archive.prefix)' has no version record", offset: 0)
        }
        let versionText = try decodeUTF8(UnsafeRawBufferPointer(rebasing: buffer[versionEntry.payloadRange]), offset: versionEntry.payloadOffset, what: "version")
        guard let version = Int(versionText.trimmingWhitespace()), version >= 1, version <= 3 else {
            throw FormatError(.invalidRecord, "unsupported archive version '\(versionText)' (expected 1…3)", offset: versionEntry.payloadOffset)
        }
        if let bo = archive.record("byteorder") {
            let text = try decodeUTF8(UnsafeRawBufferPointer(rebasing: buffer[bo.payloadRange]), offset: bo.payloadOffset, what: "byteorder")
            guard text == "little" else {
                throw FormatError(.invalidRecord, "byteorder '\(text)' is not supported (expected 'little')", offset: bo.payloadOffset)
            }
        }
        let decoded: PickleReader.Decoded
        do {
            decoded = try reader.decode(UnsafeRawBufferPointer(rebasing: buffer[pkl.payloadRange]))
        } catch {
            throw error.at(file: nil, baseOffset: pkl.payloadOffset)
        }
        guard decoded.endOffset == pkl.size else {
            throw FormatError(.invalidRecord, "data.pkl has \(pkl.size - decoded.endOffset) bytes after STOP", offset: pkl.payloadOffset + decoded.endOffset)
        }
        let value: TorchValue
        do {
            value = try TorchValue(resolving: decoded.value)
        } catch {
            throw error.at(file: nil, baseOffset: pkl.payloadOffset)
        }
        var storages: [Storage] = []
        for (_, t) in value.tensors() {
            guard let entry = archive.record("data/" + t.storageKey) else {
                throw FormatError(.invalidRecord, "tensor storage 'data/\(t.storageKey)' missing from the archive", offset: pkl.payloadOffset)
            }
            guard entry.size == t.storageByteCount else {
                throw FormatError(
                    .invalidRecord, "storage data/\(t.storageKey) holds \(entry.size) bytes, pickle says \(t.storageByteCount)", offset: entry.payloadOffset)
            }
            if let existing = storages.first(where: { $0.key == t.storageKey }) {
                guard existing.dtype == t.dtype else {
                    throw FormatError(.invalidRecord, "storage \(t.storageKey) used with dtypes \(existing.dtype) and \(t.dtype)", offset: entry.payloadOffset)
                }
            } else {
                storages.append(Storage(key: t.storageKey, dtype: t.dtype, byteRange: entry.payloadRange, crc32: entry.crc32))
            }
        }
        self.archive = archive
        self.value = value
        self.storages = storages
        self.version = version
    }

    /// Parses an archive held in an array.
    public init(parsing bytes: [UInt8], reader: PickleReader = PickleReader()) throws(FormatError) {
        var result: Result<TorchSaveFile, FormatError> = .failure(FormatError(.invalidRecord, "unreachable", offset: 0))
        bytes.withUnsafeBytes { raw in
            do throws(FormatError) { result = .success(try TorchSaveFile(parsing: raw, reader: reader)) } catch { result = .failure(error) }
        }
        self = try result.get()
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" || f == "\r" || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\r" || l == "\t" { s.removeLast() }
        return String(s)
    }
}
