import CCkptHash

/// Writes a torch.save-style zip archive as a stream, without ever holding payloads: for each entry
/// the caller writes ``beginEntry(name:size:)``'s bytes, then the payload itself, then
/// ``endEntry(crc32:)``'s bytes; ``finish()`` returns the central directory and end records.
///
/// Layout matches PyTorch's writer (spec §3.2–3.6): every local header carries an `FB` padding
/// extra field so payloads start at a multiple of ``alignment`` (relative to the archive start),
/// CRC and sizes go to a data descriptor (flags `0x0808`; `0x0800` and no descriptor for empty
/// payloads), zip64 extra fields appear only where a size or offset reaches `0xFFFFFFFF`, and the
/// archive always ends with a zip64 end record + locator before the classic EOCD (as torch does).
public struct ZipStreamWriter: Sendable {
    /// Payload alignment (64 by default as in torch; 4096 for O_DIRECT-friendly records).
    public let alignment: Int
    /// Bytes produced so far (= current offset within the archive, counting caller payloads).
    public private(set) var offset: Int = 0

    struct Written: Sendable {
        var name: [UInt8]
        var flags: UInt16
        var crc: UInt32
        var size: Int
        var lho: Int
    }
    private var written: [Written] = []
    private var pending: Written?
    private var finished = false

    /// Creates a writer. `alignment` must be a power of two ≥ 1.
    public init(alignment: Int = 64) throws(FormatError) {
        guard alignment >= 1, alignment & (alignment - 1) == 0, alignment <= 1 << 20 else {
            throw FormatError(.invalidValue, "zip payload alignment \(alignment) is not a power of two ≤ 1 MiB", offset: 0)
        }
        self.alignment = alignment
    }

    /// Number of local-header bytes ``beginEntry(name:size:)`` would produce at the current offset.
    public func headerLength(name: String, size: Int) -> Int {
        ZipStreamWriter.headerLength(nameLength: name.utf8.count, size: size, at: offset, alignment: alignment)
    }

    static func zip64LocalLength(size: Int, lho: Int) -> Int {
        let big = size >= 0xFFFF_FFFF, far = lho >= 0xFFFF_FFFF
        if big && far { return 4 + 24 }
        if big { return 4 + 16 }
        if far { return 4 + 8 }
        return 0
    }

    static func headerLength(nameLength: Int, size: Int, at lho: Int, alignment: Int) -> Int {
        let fixed = 30 + nameLength + zip64LocalLength(size: size, lho: lho) + 4
        let pad = (alignment - (lho + fixed) % alignment) % alignment
        return fixed + pad
    }

    /// Starts an entry of `size` payload bytes: returns the local header (with padding) to write
    /// before the payload. The payload then starts at `offset` (aligned).
    /// `alignment` overrides the writer's alignment for this entry (e.g. 64 for small metadata
    /// entries of an archive whose storages are 4096-aligned).
    public mutating func beginEntry(name: String, size: Int, alignment entryAlignment: Int? = nil) throws(FormatError) -> [UInt8] {
        let alignment = entryAlignment ?? self.alignment
        guard alignment >= 1, alignment & (alignment - 1) == 0, alignment <= self.alignment else {
            throw FormatError(.invalidValue, "entry alignment \(alignment) is not a power of two ≤ \(self.alignment)", offset: offset)
        }
        guard pending == nil, !finished else {
            throw FormatError(.invalidValue, "beginEntry('\(name)') while another entry is open or after finish", offset: offset)
        }
        let nameBytes = Array(name.utf8)
        guard !nameBytes.isEmpty, nameBytes.count <= 0xFFFF, size >= 0 else {
            throw FormatError(.invalidValue, "zip entry name length \(nameBytes.count) or size \(size) invalid", offset: offset)
        }
        guard !written.contains(where: { $0.name == nameBytes }) else {
            throw FormatError(.invalidValue, "duplicate zip entry name '\(name)'", offset: offset)
        }
        let lho = offset
        let flags: UInt16 = size > 0 ? 0x0808 : 0x0800
        let z64 = ZipStreamWriter.zip64LocalLength(size: size, lho: lho)
        let fixed = 30 + nameBytes.count + z64 + 4
        let pad = (alignment - (lho + fixed) % alignment) % alignment
        var w = ByteWriter(capacity: fixed + pad)
        w.u32(0x0403_4B50)
        w.u16(0)
        w.u16(flags)
        w.u16(0)
        w.u32(0)  // time + date
        w.u32(0)  // crc (descriptor)
        w.u32(0)
        w.u32(0)
        w.u16(UInt16(nameBytes.count))
        w.u16(UInt16(z64 + 4 + pad))
        w.append(nameBytes)
        if z64 > 0 {
            w.u16(0x0001)
            w.u16(UInt16(z64 - 4))
            if size >= 0xFFFF_FFFF {
                w.u64(UInt64(size))
                w.u64(0)
            }
            if lho >= 0xFFFF_FFFF { w.u64(UInt64(lho)) }
        }
        w.u8(0x46)  // 'F'
        w.u8(0x42)  // 'B'
        w.u16(UInt16(pad))
        w.repeatByte(0x5A, count: pad)
        pending = Written(name: nameBytes, flags: flags, crc: 0, size: size, lho: lho)
        offset += w.count + size
        return w.bytes
    }

    /// Ends the open entry after the caller wrote its payload: returns the data descriptor (empty
    /// for 0-byte payloads, whose CRC must be 0).
    public mutating func endEntry(crc32: UInt32) throws(FormatError) -> [UInt8] {
        guard var p = pending else {
            throw FormatError(.invalidValue, "endEntry without beginEntry", offset: offset)
        }
        pending = nil
        p.crc = crc32
        written.append(p)
        guard p.size > 0 else { return [] }
        var w = ByteWriter(capacity: 24)
        w.u32(0x0807_4B50)
        w.u32(crc32)
        if p.size >= 0xFFFF_FFFF || p.lho >= 0xFFFF_FFFF {
            w.u64(UInt64(p.size))
            w.u64(UInt64(p.size))
        } else {
            w.u32(UInt32(p.size))
            w.u32(UInt32(p.size))
        }
        offset += w.count
        return w.bytes
    }

    /// Convenience for small in-memory entries: header + payload + descriptor.
    public mutating func addEntry(name: String, payload: [UInt8], alignment: Int? = nil) throws(FormatError) -> [UInt8] {
        var out = try beginEntry(name: name, size: payload.count, alignment: alignment)
        out.append(contentsOf: payload)
        out.append(contentsOf: try endEntry(crc32: crc32(payload)))
        return out
    }

    /// Central directory, optional zip64 end records and the EOCD.
    public mutating func finish() throws(FormatError) -> [UInt8] {
        guard pending == nil, !finished else {
            throw FormatError(.invalidValue, "finish with an open entry or twice", offset: offset)
        }
        finished = true
        let cdOffset = offset
        var w = ByteWriter(capacity: written.count * 80 + 120)
        for e in written {
            let big = e.size >= 0xFFFF_FFFF, far = e.lho >= 0xFFFF_FFFF
            let extraLen = (big || far) ? 4 + (big ? 16 : 0) + (far ? 8 : 0) : 0
            w.u32(0x0201_4B50)
            w.u16(0)
            w.u16(0)
            w.u16(e.flags)
            w.u16(0)
            w.u32(0)
            w.u32(e.crc)
            w.u32(big ? 0xFFFF_FFFF : UInt32(e.size))
            w.u32(big ? 0xFFFF_FFFF : UInt32(e.size))
            w.u16(UInt16(e.name.count))
            w.u16(UInt16(extraLen))
            w.u16(0)
            w.u16(0)
            w.u16(0)
            w.u32(0)
            w.u32(far ? 0xFFFF_FFFF : UInt32(e.lho))
            w.append(e.name)
            if extraLen > 0 {
                w.u16(0x0001)
                w.u16(UInt16(extraLen - 4))
                if big {
                    w.u64(UInt64(e.size))
                    w.u64(UInt64(e.size))
                }
                if far { w.u64(UInt64(e.lho)) }
            }
        }
        let cdSize = w.count
        let n = written.count
        // PyTorch (miniz in zip64 mode) always writes the zip64 end record and locator, and puts
        // real values in the classic EOCD when they fit (observed in every fixture).
        do {
            let z64Offset = cdOffset + cdSize
            w.u32(0x0606_4B50)
            w.u64(44)
            w.u16(0x031E)
            w.u16(0x002D)
            w.u32(0)
            w.u32(0)
            w.u64(UInt64(n))
            w.u64(UInt64(n))
            w.u64(UInt64(cdSize))
            w.u64(UInt64(cdOffset))
            w.u32(0x0706_4B50)
            w.u32(0)
            w.u64(UInt64(z64Offset))
            w.u32(1)
        }
        w.u32(0x0605_4B50)
        w.u16(0)
        w.u16(0)
        w.u16(UInt16(Swift.min(n, 0xFFFF)))
        w.u16(UInt16(Swift.min(n, 0xFFFF)))
        w.u32(cdSize >= 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(cdSize))
        w.u32(cdOffset >= 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(cdOffset))
        w.u16(0)
        offset += w.count
        return w.bytes
    }
}
