/// Codec for the per-chunk records of `.distcp` files: `torch.save(tensor)` archives (spec §3).
public enum TorchTensorRecord {
    /// Computes the record for a contiguous tensor without touching its bytes.
    ///
    /// - Parameters:
    ///   - payloadCRC32: zlib CRC-32 of the tensor bytes (0 if the caller chooses not to compute it,
    ///     as torch does with `compute_crc32=False`).
    ///   - alignment: payload alignment within the record (64 = torch default; 4096 for O_DIRECT);
    ///     `.storage_alignment` records it.
    ///   - serializationID: 40 digits; derived from the records when nil.
    public static func layout(
        dtype: DType, shape: [Int], payloadCRC32: UInt32, alignment: Int = 64, archiveName: String = "archive",
        serializationID: String? = nil
    ) throws(FormatError) -> RecordLayout {
        guard shape.allSatisfy({ $0 >= 0 }), let numel = Checked.product(shape), let nbytes = Checked.multiply(numel, dtype.itemSize) else {
            throw FormatError(.invalidValue, "invalid tensor shape \(shape)", offset: 0)
        }
        guard nbytes > 0 || payloadCRC32 == 0 else {
            throw FormatError(.invalidValue, "empty payload must have CRC 0", offset: 0)
        }
        var w = try TorchSaveWriter(value: .tensor(.contiguous(dtype: dtype, shape: shape)), archiveName: archiveName, alignment: alignment)
        var prefix = try w.start()
        prefix += try w.beginStorage()
        let payloadOffset = prefix.count
        var suffix = try w.endStorage(crc32: payloadCRC32)
        suffix += try w.finish(serializationID: serializationID)
        return RecordLayout(
            prefix: prefix, payloadOffset: payloadOffset, payloadLength: nbytes, suffix: suffix,
            recordLength: prefix.count + nbytes + suffix.count)
    }

    /// Encodes a complete record in memory (tests, small tensors).
    public static func encode(
        dtype: DType, shape: [Int], payload: [UInt8], alignment: Int = 64, archiveName: String = "archive", serializationID: String? = nil
    ) throws(FormatError) -> [UInt8] {
        let l = try layout(
            dtype: dtype, shape: shape, payloadCRC32: payload.isEmpty ? 0 : crc32(payload), alignment: alignment,
            archiveName: archiveName, serializationID: serializationID)
        guard payload.count == l.payloadLength else {
            throw FormatError(.invalidValue, "payload has \(payload.count) bytes, shape \(shape) of \(dtype) needs \(l.payloadLength)", offset: 0)
        }
        return l.prefix + payload + l.suffix
    }

    /// Parses a whole record: zip structure, `data.pkl`, and the tensor view against `data/<key>`.
    public static func read(_ record: UnsafeRawBufferPointer, reader: PickleReader = PickleReader()) throws(FormatError) -> TensorRecord {
        let file = try TorchSaveFile(parsing: record, reader: reader)
        guard case .tensor(let t) = file.value, let storage = file.storages.first else {
            throw FormatError(.invalidRecord, "record's data.pkl is not a single tensor", offset: 0)
        }
        let span = try t.spannedByteRange()
        return TensorRecord(
            prefix: file.archive.prefix, tensor: t, storageRange: storage.byteRange,
            tensorRange: (storage.byteRange.lowerBound + span.lowerBound)..<(storage.byteRange.lowerBound + span.upperBound))
    }

    /// Parses a whole record held in an array.
    public static func read(_ record: [UInt8], reader: PickleReader = PickleReader()) throws(FormatError) -> TensorRecord {
        var result: Result<TensorRecord, FormatError> = .failure(FormatError(.invalidRecord, "unreachable", offset: 0))
        record.withUnsafeBytes { raw in
            do throws(FormatError) { result = .success(try read(raw, reader: reader)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    /// Locates the tensor from only the first bytes of a record (`head`, record offset 0) and the
    /// record length, by walking local headers forward: `data.pkl` (parsed with the safe reader),
    /// the small metadata entries (sizes from the local header, or found through their
    /// CRC-verified data descriptor), then `data/<key>`'s local header. Returns
    /// ``TensorRecordLocation/needMoreHead(headBytes:)`` when `head` is too short. The central
    /// directory is not read; use ``read(_:reader:)`` for full validation.
    public static func locate(head: UnsafeRawBufferPointer, recordLength: Int, reader: PickleReader = PickleReader()) throws(FormatError) -> TensorRecordLocation {
        guard head.count <= recordLength else {
            throw FormatError(.invalidValue, "head of \(head.count) bytes is longer than the record (\(recordLength))", offset: 0)
        }
        func more(_ need: Int) throws(FormatError) -> TensorRecordLocation {
            guard head.count < recordLength, need <= recordLength || head.count < recordLength else {
                throw FormatError(.truncated, "record of \(recordLength) bytes ends before the tensor header is complete (needs \(need))", offset: head.count)
            }
            return .needMoreHead(headBytes: Swift.min(recordLength, Swift.max(need, head.count + 1)))
        }
        // Local header of data.pkl.
        guard head.count >= 30 else { return try more(30) }
        var r = ByteReader(head)
        guard try r.u32() == 0x0403_4B50 else {
            throw FormatError(.invalidZip, "record does not start with a local file header", offset: 0)
        }
        _ = try r.u16()
        let flags = try r.u16()
        guard try r.u16() == 0 else { throw FormatError(.invalidZip, "data.pkl is compressed", offset: 8) }
        _ = try r.u32()
        _ = try r.u32()
        let comp = try r.u32()
        _ = try r.u32()
        let nameLen = Int(try r.u16()), extraLen = Int(try r.u16())
        guard head.count >= 30 + nameLen + extraLen else { return try more(30 + nameLen + extraLen) }
        let name = try decodeUTF8(try r.bytes(nameLen, "name"), offset: 30, what: "entry name")
        try r.skip(extraLen, "extra")
        guard let slash = name.firstIndex(of: "/"), name[name.index(after: slash)...] == "data.pkl" else {
            throw FormatError(.invalidRecord, "first entry is '\(name)', expected '<prefix>/data.pkl'", offset: 30)
        }
        let prefix = String(name[..<slash])
        let pklStart = r.position
        let decoded: PickleReader.Decoded
        do {
            decoded = try reader.decode(UnsafeRawBufferPointer(rebasing: head[pklStart...]))
        } catch {
            if error.code == .truncated && head.count < recordLength { return try more(head.count * 2) }
            throw error.at(file: nil, baseOffset: pklStart)
        }
        guard case .tensor(let tensor) = try TorchValue(resolving: decoded.value) else {
            throw FormatError(.invalidRecord, "record's data.pkl is not a single tensor", offset: pklStart)
        }
        let span = try tensor.spannedByteRange()
        var pos = pklStart + decoded.endOffset
        if flags & 0x0008 != 0 {
            guard head.count >= pos + 16 else { return try more(pos + 16) }
            var d = ByteReader(head, at: pos)
            var first = try d.u32()
            if first == 0x0807_4B50 { first = try d.u32() }
            let size = try d.u32()
            guard size == UInt32(decoded.endOffset) else {
                throw FormatError(.invalidZip, "data.pkl descriptor size \(size) != pickle length \(decoded.endOffset)", offset: pos)
            }
            _ = try d.u32()
            pos = d.position
        } else {
            guard comp == UInt32(decoded.endOffset) else {
                throw FormatError(.invalidZip, "data.pkl local size \(comp) != pickle length \(decoded.endOffset)", offset: 18)
            }
        }
        let storageName = "data/" + tensor.storageKey
        for _ in 0..<64 {
            guard head.count >= pos + 30 else { return try more(pos + 30) }
            var h = ByteReader(head, at: pos)
            guard try h.u32() == 0x0403_4B50 else {
                throw FormatError(.invalidZip, "expected a local file header", offset: pos)
            }
            _ = try h.u16()
            let f = try h.u16()
            guard try h.u16() == 0 else { throw FormatError(.invalidZip, "compressed entry", offset: pos + 8) }
            _ = try h.u32()
            let crc = try h.u32()
            let c = try h.u32()
            _ = try h.u32()
            let nl = Int(try h.u16()), el = Int(try h.u16())
            guard head.count >= pos + 30 + nl + el else { return try more(pos + 30 + nl + el) }
            let n = try decodeUTF8(try h.bytes(nl, "name"), offset: pos + 30, what: "entry name")
            let extra = try h.bytes(el, "extra")
            let payload = h.position
            guard n.hasPrefix(prefix + "/") else {
                throw FormatError(.invalidZip, "entry '\(n)' outside archive prefix '\(prefix)'", offset: pos + 30)
            }
            if n.dropFirst(prefix.count + 1) == storageName {
                guard ZipArchive.extraFieldIsWellFormed(extra) else {
                    throw FormatError(
                        .invalidZip, "extra field of '\(n)' (\(el) bytes) is not a sequence of well-formed blocks: damaged local header",
                        offset: pos + 28)
                }
                let size = tensor.storageByteCount
                let wide = ZipArchive.zip64Extra(extra) != nil
                let trailer = (f & 0x0008 != 0 && size > 0) ? (wide ? 24 : 16) : 0
                guard let end = Checked.add(payload, size), end + trailer + 22 <= recordLength else {
                    throw FormatError(.invalidRecord, "storage of \(size) bytes at \(payload) does not fit in a \(recordLength)-byte record", offset: payload)
                }
                return .located(
                    TensorRecord(
                        prefix: prefix, tensor: tensor, storageRange: payload..<end,
                        tensorRange: (payload + span.lowerBound)..<(payload + span.upperBound)))
            }
            if f & 0x0008 == 0 {
                // Sizes in the local header (torch: only for empty entries).
                guard let next = Checked.add(payload, Int(c)) else { break }
                if c > 0, head.count >= next {
                    guard crc32(UnsafeRawBufferPointer(rebasing: head[payload..<next])) == crc else {
                        throw FormatError(.invalidZip, "CRC-32 mismatch in entry '\(n)'", offset: payload)
                    }
                }
                pos = next
                continue
            }
            // Scan for the CRC-verified data descriptor of a small entry.
            var found = -1
            var p = payload
            let scanEnd = Swift.min(head.count - 16, payload + 65536)
            while p <= scanEnd {
                if ByteReader.u32(head, p) == 0x0807_4B50 {
                    let size = Int(ByteReader.u32(head, p + 8))
                    if size == p - payload && Int(ByteReader.u32(head, p + 12)) == size
                        && crc32(UnsafeRawBufferPointer(rebasing: head[payload..<p])) == ByteReader.u32(head, p + 4)
                    {
                        found = p
                        break
                    }
                }
                p += 1
            }
            guard found >= 0 else {
                if head.count >= recordLength || scanEnd >= payload + 65536 {
                    throw FormatError(.invalidZip, "no data descriptor found for entry '\(n)'", offset: payload)
                }
                return try more(head.count * 2)
            }
            pos = found + 16
        }
        throw FormatError(.invalidRecord, "storage entry '\(prefix)/\(storageName)' not found among the first 64 entries", offset: pos)
    }
}
