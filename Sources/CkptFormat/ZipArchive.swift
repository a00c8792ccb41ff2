import CCkptHash

/// A parsed zip archive held in memory, restricted to what torch.save writes: stored entries only,
/// single disk, optional zip64. Every offset and length is bounds-checked; overlapping entries,
/// duplicate names, offsets past the end and inconsistent zip64 values are rejected.
public struct ZipArchive: Sendable {
    /// Entries in central-directory order.
    public var entries: [ZipEntry]
    /// Archive prefix: the text before the first `/` of the first central-directory name.
    public var prefix: String
    /// Offset of the central directory.
    public var centralDirectoryOffset: Int
    /// Total archive length.
    public var length: Int

    /// Upper bound on the number of entries accepted.
    public static let maxEntries = 1 << 20

    /// Parses and validates a whole archive.
    public init(parsing buffer: UnsafeRawBufferPointer) throws(FormatError) {
        let cd = try ZipArchive.parseCentralDirectory(tail: buffer, tailOffset: 0, archiveLength: buffer.count)
        var entries = cd.entries
        for i in entries.indices {
            try ZipArchive.resolveLocal(&entries[i], buffer: buffer, limit: cd.centralDirectoryOffset)
        }
        let sorted = entries.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for i in sorted.indices.dropFirst() where sorted[i].localHeaderOffset < sorted[i - 1].endOffset {
            throw FormatError(
                .invalidZip, "entry '\(sorted[i].name)' at \(sorted[i].localHeaderOffset) overlaps '\(sorted[i - 1].name)' ending at \(sorted[i - 1].endOffset)",
                offset: sorted[i].localHeaderOffset)
        }
        self.entries = entries
        self.prefix = cd.prefix
        self.centralDirectoryOffset = cd.centralDirectoryOffset
        self.length = buffer.count
    }

    /// Parses an array holding a whole archive.
    public init(parsing bytes: [UInt8]) throws(FormatError) {
        var result: Result<ZipArchive, FormatError> = .failure(FormatError(.invalidZip, "unreachable", offset: 0))
        bytes.withUnsafeBytes { raw in
            do throws(FormatError) { result = .success(try ZipArchive(parsing: raw)) } catch { result = .failure(error) }
        }
        self = try result.get()
    }

    /// The entry named `name` (full name, including the prefix).
    public func entry(named name: String) -> ZipEntry? {
        entries.first { $0.name == name }
    }

    /// The entry `"<prefix>/<record>"`.
    public func record(_ record: String) -> ZipEntry? {
        entry(named: prefix + "/" + record)
    }

    /// Verifies the CRC-32 of `entry`'s payload in `buffer` (the buffer the archive was parsed from).
    public static func verifyCRC(_ entry: ZipEntry, in buffer: UnsafeRawBufferPointer) throws(FormatError) {
        guard entry.payloadRange.upperBound <= buffer.count else {
            throw FormatError(.truncated, "payload of '\(entry.name)' past the end of the buffer", offset: entry.payloadOffset)
        }
        let crc = crc32(UnsafeRawBufferPointer(rebasing: buffer[entry.payloadRange]))
        guard crc == entry.crc32 else {
            throw FormatError(.invalidZip, "CRC-32 of '\(entry.name)' is \(crc), central directory says \(entry.crc32)", offset: entry.payloadOffset)
        }
    }

    /// Result of parsing only the end of an archive.
    public struct CentralDirectory: Sendable {
        /// Entries with name, flags, CRC, size and local header offset (payload offsets unresolved).
        public var entries: [ZipEntry]
        /// Archive prefix from the first name.
        public var prefix: String
        /// Offset of the central directory within the archive.
        public var centralDirectoryOffset: Int
    }

    /// Parses EOCD, optional zip64 records and the central directory from the last bytes of an
    /// archive: `tail` holds archive bytes `tailOffset..<archiveLength`. Throws `.truncated` with
    /// `offset` = the archive offset the tail must start at when it is too short.
    public static func parseCentralDirectory(tail: UnsafeRawBufferPointer, tailOffset: Int, archiveLength: Int) throws(FormatError) -> CentralDirectory {
        guard tailOffset >= 0, tailOffset + tail.count == archiveLength else {
            throw FormatError(.invalidValue, "tail of \(tail.count) bytes at \(tailOffset) does not end at archive length \(archiveLength)", offset: tailOffset)
        }
        guard archiveLength >= 22, tail.count >= 22 else {
            throw FormatError(.truncated, "expected an end-of-central-directory record (22 bytes)", offset: Swift.max(0, archiveLength - 22))
        }
        // Locate the EOCD: torch writes no comment, but accept one.
        var eocd = -1
        var pos = tail.count - 22
        let lowest = Swift.max(0, tail.count - 22 - 0xFFFF)
        while pos >= lowest {
            if ByteReader.u32(tail, pos) == 0x0605_4B50 && Int(ByteReader.u16(tail, pos + 20)) == tail.count - pos - 22 {
                eocd = pos
                break
            }
            pos -= 1
        }
        guard eocd >= 0 else {
            if tailOffset > 0 && archiveLength >= 22 + 0xFFFF {
                throw FormatError(.truncated, "end-of-central-directory signature not found in the tail", offset: Swift.max(0, archiveLength - 22 - 0xFFFF))
            }
            throw FormatError(.invalidZip, "no end-of-central-directory record (signature 0x06054b50)", offset: archiveLength - 22)
        }
        let eocdAbs = tailOffset + eocd
        var r = ByteReader(tail, at: eocd + 4)
        let disk = try r.u16(), cdDisk = try r.u16()
        let countDisk = try r.u16(), count16 = try r.u16()
        let cdSize32 = try r.u32(), cdOffset32 = try r.u32()
        guard disk == 0 || disk == 0xFFFF, cdDisk == 0 || cdDisk == 0xFFFF, countDisk == count16 else {
            throw FormatError(.invalidZip, "multi-disk archives are not supported", offset: eocdAbs)
        }
        var count = Int(count16)
        var cdSize = Int(cdSize32)
        var cdOffset = Int(cdOffset32)
        var cdLimit = eocdAbs
        let hasLocator = eocd >= 20 && ByteReader.u32(tail, eocd - 20) == 0x0706_4B50
        let needsZip64 = count16 == 0xFFFF || cdSize32 == 0xFFFF_FFFF || cdOffset32 == 0xFFFF_FFFF
        if needsZip64 && !hasLocator {
            if eocd < 20 && tailOffset > 0 {
                throw FormatError(.truncated, "need the zip64 locator before the EOCD", offset: eocdAbs - 20)
            }
            throw FormatError(.invalidZip, "EOCD uses zip64 sentinels but no zip64 locator precedes it", offset: eocdAbs)
        }
        if hasLocator {
            var l = ByteReader(tail, at: eocd - 16)
            let locDisk = try l.u32()
            let z64Off = try l.u64()
            let disks = try l.u32()
            guard locDisk == 0, disks == 1 else {
                throw FormatError(.invalidZip, "zip64 locator names disk \(locDisk) of \(disks)", offset: eocdAbs - 20)
            }
            guard eocdAbs >= 20 + 56, z64Off <= UInt64(eocdAbs - 20 - 56) else {
                throw FormatError(.invalidZip, "zip64 EOCD offset \(z64Off) is not before the locator at \(eocdAbs - 20)", offset: eocdAbs - 20)
            }
            let z64 = Int(z64Off)
            guard z64 >= tailOffset else {
                throw FormatError(.truncated, "need the zip64 end record", offset: z64)
            }
            var z = ByteReader(tail, at: z64 - tailOffset)
            guard try z.u32() == 0x0606_4B50 else {
                throw FormatError(.invalidZip, "expected zip64 end record signature 0x06064b50", offset: z64)
            }
            let recSize = try z.u64()
            guard recSize >= 44, recSize <= UInt64(eocdAbs - 20 - z64 - 12) else {
                throw FormatError(.invalidZip, "zip64 end record size \(recSize) inconsistent", offset: z64 + 4)
            }
            _ = try z.u16()
            _ = try z.u16()
            let zd = try z.u32(), zcd = try z.u32()
            let n1 = try z.u64(), n2 = try z.u64()
            let zSize = try z.u64(), zOff = try z.u64()
            guard zd == 0, zcd == 0, n1 == n2 else {
                throw FormatError(.invalidZip, "zip64 end record describes a multi-disk archive", offset: z64)
            }
            guard n1 <= UInt64(maxEntries), zSize <= UInt64(z64), zOff <= UInt64(z64) else {
                throw FormatError(.invalidZip, "zip64 end record values out of range (entries \(n1), cd size \(zSize), cd offset \(zOff))", offset: z64)
            }
            // Classic fields must either be sentinels or agree.
            guard count16 == 0xFFFF || Int(count16) == Int(n1),
                cdSize32 == 0xFFFF_FFFF || Int(cdSize32) == Int(zSize),
                cdOffset32 == 0xFFFF_FFFF || Int(cdOffset32) == Int(zOff)
            else {
                throw FormatError(.invalidZip, "classic EOCD disagrees with the zip64 end record", offset: eocdAbs)
            }
            count = Int(n1)
            cdSize = Int(zSize)
            cdOffset = Int(zOff)
            cdLimit = z64
        }
        guard cdOffset <= cdLimit, cdSize <= cdLimit - cdOffset else {
            throw FormatError(.invalidZip, "central directory \(cdOffset)+\(cdSize) extends past its end record at \(cdLimit)", offset: eocdAbs)
        }
        guard count <= cdSize / 46, count <= maxEntries else {
            throw FormatError(.invalidZip, "\(count) entries cannot fit in a \(cdSize)-byte central directory", offset: eocdAbs)
        }
        guard cdOffset >= tailOffset else {
            throw FormatError(.truncated, "need the central directory", offset: cdOffset)
        }
        var c = ByteReader(UnsafeRawBufferPointer(rebasing: tail[(cdOffset - tailOffset)..<(cdOffset + cdSize - tailOffset)]))
        var entries: [ZipEntry] = []
        entries.reserveCapacity(count)
        var names = Set<String>()
        for _ in 0..<count {
            let at = cdOffset + c.position
            guard try c.u32("central directory signature") == 0x0201_4B50 else {
                throw FormatError(.invalidZip, "expected central directory signature 0x02014b50", offset: at)
            }
            _ = try c.u16()
            _ = try c.u16()
            let flags = try c.u16()
            let method = try c.u16()
            _ = try c.u32()  // time, date
            let crc = try c.u32()
            let comp32 = try c.u32(), uncomp32 = try c.u32()
            let nameLen = Int(try c.u16()), extraLen = Int(try c.u16()), commentLen = Int(try c.u16())
            _ = try c.u16()
            _ = try c.u16()
            _ = try c.u32()
            let lho32 = try c.u32()
            let nameStart = c.position
            let nameBytes = try c.bytes(nameLen, "entry name")
            let name = try decodeUTF8(nameBytes, offset: cdOffset + nameStart, what: "zip entry name")
            let extraStart = cdOffset + c.position
            let extra = try c.bytes(extraLen, "central directory extra field")
            try c.skip(commentLen, "entry comment")
            guard method == 0 else {
                throw FormatError(.invalidZip, "entry '\(name)' uses compression method \(method); only stored (0) is supported", offset: at)
            }
            guard flags & 0x0001 == 0 else {
                throw FormatError(.invalidZip, "entry '\(name)' is encrypted", offset: at)
            }
            var uncomp = UInt64(uncomp32), comp = UInt64(comp32), lho = UInt64(lho32)
            if uncomp32 == 0xFFFF_FFFF || comp32 == 0xFFFF_FFFF || lho32 == 0xFFFF_FFFF {
                guard let z = zip64Extra(extra) else {
                    throw FormatError(.invalidZip, "entry '\(name)' uses zip64 sentinels without a zip64 extra field", offset: extraStart)
                }
                var zr = ByteReader(z)
                if uncomp32 == 0xFFFF_FFFF { uncomp = try zr.u64("zip64 uncompressed size") }
                if comp32 == 0xFFFF_FFFF { comp = try zr.u64("zip64 compressed size") }
                if lho32 == 0xFFFF_FFFF { lho = try zr.u64("zip64 local header offset") }
            }
            guard comp == uncomp else {
                throw FormatError(.invalidZip, "stored entry '\(name)' has compressed size \(comp) != size \(uncomp)", offset: at)
            }
            guard lho < UInt64(cdOffset), uncomp <= UInt64(cdOffset) else {
                throw FormatError(.invalidZip, "entry '\(name)' local header \(lho) / size \(uncomp) past the central directory at \(cdOffset)", offset: at)
            }
            guard names.insert(name).inserted else {
                throw FormatError(.invalidZip, "duplicate entry name '\(name)'", offset: at)
            }
            entries.append(ZipEntry(name: name, flags: flags, crc32: crc, size: Int(uncomp), localHeaderOffset: Int(lho)))
        }
        guard c.position == cdSize else {
            throw FormatError(.invalidZip, "central directory size \(cdSize) but entries use \(c.position) bytes", offset: cdOffset + c.position)
        }
        var prefix = ""
        if let first = entries.first {
            guard let slash = first.name.firstIndex(of: "/") else {
                throw FormatError(.invalidZip, "first entry name '\(first.name)' has no archive prefix", offset: cdOffset)
            }
            prefix = String(first.name[..<slash])
        }
        return CentralDirectory(entries: entries, prefix: prefix, centralDirectoryOffset: cdOffset)
    }

    /// Resolves where `entry`'s payload starts from only its local header, for readers that hold
    /// the central directory (``parseCentralDirectory(tail:tailOffset:archiveLength:)``) but not the
    /// whole archive. `localHeader` holds archive bytes starting at `entry.localHeaderOffset`
    /// (at least 30 + name + extra bytes; throws `.truncated` with the needed count otherwise).
    public static func resolvePayload(
        of entry: ZipEntry, localHeader: UnsafeRawBufferPointer, centralDirectoryOffset: Int
    ) throws(FormatError) -> ZipEntry {
        let lho = entry.localHeaderOffset
        guard localHeader.count >= 30 else {
            throw FormatError(.truncated, "need 30 bytes of local header for '\(entry.name)'", offset: lho + 30)
        }
        guard ByteReader.u32(localHeader, 0) == 0x0403_4B50 else {
            throw FormatError(.invalidZip, "expected local header signature 0x04034b50 for '\(entry.name)'", offset: lho)
        }
        guard ByteReader.u16(localHeader, 8) == 0 else {
            throw FormatError(.invalidZip, "local header of '\(entry.name)' is compressed", offset: lho + 8)
        }
        let nameLen = Int(ByteReader.u16(localHeader, 26)), extraLen = Int(ByteReader.u16(localHeader, 28))
        guard localHeader.count >= 30 + nameLen else {
            throw FormatError(.truncated, "need \(30 + nameLen + extraLen) bytes of local header for '\(entry.name)'", offset: lho + 30 + nameLen + extraLen)
        }
        guard UnsafeRawBufferPointer(rebasing: localHeader[30..<(30 + nameLen)]).elementsEqual(entry.name.utf8) else {
            throw FormatError(.invalidZip, "local header name differs from '\(entry.name)'", offset: lho + 30)
        }
        let payload = lho + 30 + nameLen + extraLen
        guard payload <= centralDirectoryOffset, entry.size <= centralDirectoryOffset - payload else {
            throw FormatError(.invalidZip, "payload of '\(entry.name)' runs into the central directory", offset: payload)
        }
        var out = entry
        out.flags = ByteReader.u16(localHeader, 6)
        out.payloadOffset = payload
        let descriptor = out.flags & 0x0008 != 0 && entry.size > 0 ? (entry.size >= 0xFFFF_FFFF || lho >= 0xFFFF_FFFF ? 24 : 16) : 0
        out.endOffset = payload + entry.size + descriptor
        return out
    }

    /// The data of the zip64 (0x0001) block in an extra field, if any.
    /// Whether an extra field is a sequence of `(id, size, data)` blocks filling it exactly (the
    /// FB padding block torch writes, optionally after a zip64 block). A damaged extra-field
    /// length in a local header breaks this, where it would otherwise move the payload silently.
    static func extraFieldIsWellFormed(_ extra: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i + 4 <= extra.count {
            i += 4 + Int(ByteReader.u16(extra, i + 2))
        }
        return i == extra.count
    }

    static func zip64Extra(_ extra: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var i = 0
        while i + 4 <= extra.count {
            let id = ByteReader.u16(extra, i)
            let len = Int(ByteReader.u16(extra, i + 2))
            guard i + 4 + len <= extra.count else { return nil }
            if id == 0x0001 { return UnsafeRawBufferPointer(rebasing: extra[(i + 4)..<(i + 4 + len)]) }
            i += 4 + len
        }
        return nil
    }

    /// Reads the local header of `entry`, fills payload/end offsets and checks consistency.
    static func resolveLocal(_ entry: inout ZipEntry, buffer: UnsafeRawBufferPointer, limit: Int) throws(FormatError) {
        let lho = entry.localHeaderOffset
        var r = ByteReader(buffer, at: lho)
        guard try r.u32("local header signature") == 0x0403_4B50 else {
            throw FormatError(.invalidZip, "expected local header signature 0x04034b50 for '\(entry.name)'", offset: lho)
        }
        _ = try r.u16()
        let flags = try r.u16()
        let method = try r.u16()
        _ = try r.u32()
        let crc = try r.u32()
        let comp = try r.u32(), uncomp = try r.u32()
        let nameLen = Int(try r.u16()), extraLen = Int(try r.u16())
        let nameBytes = try r.bytes(nameLen, "local entry name")
        let extra = try r.bytes(extraLen, "local extra field")
        guard method == 0 else {
            throw FormatError(.invalidZip, "local header of '\(entry.name)' uses method \(method)", offset: lho)
        }
        guard nameBytes.elementsEqual(entry.name.utf8) else {
            throw FormatError(.invalidZip, "local header name differs from central directory name '\(entry.name)'", offset: lho + 30)
        }
        let payload = r.position
        guard payload <= limit, entry.size <= limit - payload else {
            throw FormatError(.invalidZip, "payload of '\(entry.name)' (\(payload)+\(entry.size)) runs into the central directory at \(limit)", offset: payload)
        }
        var end = payload + entry.size
        if flags & 0x0008 != 0 {
            // Data descriptor: optional signature, crc, sizes (u64 when zip64).
            var d = ByteReader(buffer, at: end)
            var first = try d.u32("data descriptor")
            if first == 0x0807_4B50 { first = try d.u32("data descriptor CRC") }
            let wide = zip64Extra(extra) != nil || entry.size >= 0xFFFF_FFFF || lho >= 0xFFFF_FFFF
            let c: UInt64 = wide ? try d.u64("descriptor size") : UInt64(try d.u32("descriptor size"))
            let u: UInt64 = wide ? try d.u64("descriptor size") : UInt64(try d.u32("descriptor size"))
            guard first == entry.crc32, c == UInt64(entry.size), u == UInt64(entry.size) else {
                throw FormatError(.invalidZip, "data descriptor of '\(entry.name)' disagrees with the central directory", offset: end)
            }
            end = d.position
        } else {
            var lc = UInt64(comp), lu = UInt64(uncomp)
            if comp == 0xFFFF_FFFF || uncomp == 0xFFFF_FFFF, let z = zip64Extra(extra) {
                var zr = ByteReader(z)
                if uncomp == 0xFFFF_FFFF { lu = try zr.u64() }
                if comp == 0xFFFF_FFFF { lc = try zr.u64() }
            }
            guard crc == entry.crc32, lc == UInt64(entry.size), lu == UInt64(entry.size) else {
                throw FormatError(.invalidZip, "local header of '\(entry.name)' disagrees with the central directory", offset: lho)
            }
        }
        guard end <= limit else {
            throw FormatError(.invalidZip, "entry '\(entry.name)' runs into the central directory", offset: end)
        }
        entry.flags = flags
        entry.payloadOffset = payload
        entry.endOffset = end
    }
}

/// Standard zlib CRC-32 of a buffer.
public func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
    return ckpt_crc32_update(crc, base, bytes.count)
}

/// Standard zlib CRC-32 of an array.
public func crc32(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { crc32($0) }
}
