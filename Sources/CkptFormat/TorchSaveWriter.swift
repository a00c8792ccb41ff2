import CCkptHash

/// Streams a torch.save archive of a nested value with tensor leaves, one storage at a time, so a
/// consolidator needs memory for only one tensor. Call order:
/// ``start()``, then per storage (in ``storages`` order) ``beginStorage()`` → payload bytes →
/// ``endStorage(crc32:)``, then ``finish(serializationID:)``. CRCs may be computed while the
/// payload streams: they are only needed after it.
///
/// Records and order follow torch.save (spec §3.1): `data.pkl`, `.format_version`,
/// `.storage_alignment`, `byteorder`, `data/0…`, `version`, `.data/serialization_id`.
public struct TorchSaveWriter: Sendable {
    /// A storage slot the caller must fill.
    public struct Storage: Sendable, Equatable {
        /// Key (`data/<key>`).
        public var key: String
        /// Element type.
        public var dtype: DType
        /// Exact payload length.
        public var byteCount: Int
    }

    /// The value as written (tensor storage keys rewritten to `"0"`, `"1"`, …).
    public let value: TorchValue
    /// Storages in write order.
    public let storages: [Storage]
    /// Archive prefix.
    public let archiveName: String
    private var zip: ZipStreamWriter
    private var next = 0
    private var stage = 0
    private var recordNames: [String] = []
    private var recordCRCs: [UInt32] = []
    private let pickle: [UInt8]

    /// Prepares the archive. Tensor leaves sharing a non-empty storage key share one storage;
    /// leaves with an empty key each get their own. Keys are renumbered in pickle traversal order.
    public init(value: TorchValue, archiveName: String = "archive", alignment: Int = 64) throws(FormatError) {
        var keyMap: [String: String] = [:]
        var storages: [Storage] = []
        func rekey(_ v: TorchValue) throws(FormatError) -> TorchValue {
            switch v {
            case .tensor(var t):
                _ = try t.spannedByteRange()
                if !t.storageKey.isEmpty, let k = keyMap[t.storageKey] {
                    guard let s = storages.first(where: { $0.key == k }), s.dtype == t.dtype, s.byteCount == t.storageByteCount else {
                        throw FormatError(.invalidValue, "tensors sharing storage '\(t.storageKey)' disagree on dtype or size", offset: 0)
                    }
                    t.storageKey = k
                } else {
                    let k = String(storages.count)
                    if !t.storageKey.isEmpty { keyMap[t.storageKey] = k }
                    storages.append(Storage(key: k, dtype: t.dtype, byteCount: t.storageByteCount))
                    t.storageKey = k
                }
                return .tensor(t)
            case .tuple(let a):
                var out: [TorchValue] = []
                for x in a { out.append(try rekey(x)) }
                return .tuple(out)
            case .list(let a):
                var out: [TorchValue] = []
                for x in a { out.append(try rekey(x)) }
                return .list(out)
            case .dict(let e):
                var out: [TorchValue.Entry] = []
                for x in e { out.append(TorchValue.Entry(try rekey(x.key), try rekey(x.value))) }
                return .dict(out)
            default: return v
            }
        }
        let rewritten = try rekey(value)
        guard !archiveName.isEmpty, !archiveName.contains("/") else {
            throw FormatError(.invalidValue, "archive name '\(archiveName)' must be non-empty without '/'", offset: 0)
        }
        self.value = rewritten
        self.storages = storages
        self.archiveName = archiveName
        self.zip = try ZipStreamWriter(alignment: alignment)
        self.pickle = PickleWriter(protocol: .v2).encode(rewritten.pickleValue())
    }

    /// Current archive offset (bytes produced so far, counting payloads).
    public var offset: Int { zip.offset }

    private mutating func small(_ name: String, _ payload: [UInt8]) throws(FormatError) -> [UInt8] {
        account(name, crc: crc32(payload), size: payload.count)
        // Only storages need the archive's alignment (4096 for O_DIRECT); the small entries keep
        // torch's 64, so a 4096-aligned record is not padded to 4096 at every entry.
        return try zip.addEntry(name: archiveName + "/" + name, payload: payload, alignment: min(64, zip.alignment))
    }

    private mutating func account(_ name: String, crc: UInt32, size: Int) {
        recordNames.append(name)
        // PyTorch skips empty records when combining CRCs (verified on empty-chunk fixtures).
        if size > 0 { recordCRCs.append(crc) }
    }

    /// `data.pkl`, `.format_version`, `.storage_alignment` and `byteorder` entries.
    public mutating func start() throws(FormatError) -> [UInt8] {
        guard stage == 0 else { throw FormatError(.invalidValue, "start() called twice", offset: zip.offset) }
        stage = 1
        var out = try small("data.pkl", pickle)
        out += try small(".format_version", Array("1".utf8))
        out += try small(".storage_alignment", Array(String(zip.alignment).utf8))
        out += try small("byteorder", Array("little".utf8))
        return out
    }

    /// Local header of the next storage; the payload (``Storage/byteCount`` bytes) follows it.
    public mutating func beginStorage() throws(FormatError) -> [UInt8] {
        guard stage == 1, next < storages.count else {
            throw FormatError(.invalidValue, "beginStorage() out of order (storage \(next) of \(storages.count))", offset: zip.offset)
        }
        stage = 2
        return try zip.beginEntry(name: archiveName + "/data/" + storages[next].key, size: storages[next].byteCount)
    }

    /// Data descriptor after the current storage's payload.
    public mutating func endStorage(crc32: UInt32) throws(FormatError) -> [UInt8] {
        guard stage == 2 else { throw FormatError(.invalidValue, "endStorage() without beginStorage()", offset: zip.offset) }
        stage = 1
        account("data/" + storages[next].key, crc: crc32, size: storages[next].byteCount)
        next += 1
        return try zip.endEntry(crc32: crc32)
    }

    /// `version`, `.data/serialization_id`, central directory and end records. `serializationID`
    /// must be 40 ASCII digits; by default it is computed from the record names and CRC-32s
    /// exactly as PyTorch's `PyTorchStreamWriter` does.
    public mutating func finish(serializationID: String? = nil) throws(FormatError) -> [UInt8] {
        guard stage == 1, next == storages.count else {
            throw FormatError(.invalidValue, "finish() before all \(storages.count) storages were written", offset: zip.offset)
        }
        stage = 3
        var out = try small("version", Array("3\n".utf8))
        let sid: String
        if let serializationID {
            guard serializationID.utf8.count == 40, serializationID.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw FormatError(.invalidValue, "serialization id must be 40 decimal digits", offset: zip.offset)
            }
            sid = serializationID
        } else {
            sid = SerializationID.make(names: recordNames, crcs: recordCRCs)
        }
        out += try zip.addEntry(name: archiveName + "/.data/serialization_id", payload: Array(sid.utf8))
        out += try zip.finish()
        return out
    }

    /// Writes a complete archive in memory, with `payloads[i]` the bytes of ``storages``[i].
    public static func encode(
        _ value: TorchValue, payloads: [[UInt8]], archiveName: String = "archive", alignment: Int = 64, serializationID: String? = nil
    ) throws(FormatError) -> [UInt8] {
        var w = try TorchSaveWriter(value: value, archiveName: archiveName, alignment: alignment)
        guard payloads.count == w.storages.count else {
            throw FormatError(.invalidValue, "\(payloads.count) payloads for \(w.storages.count) storages", offset: 0)
        }
        var out = try w.start()
        for (i, p) in payloads.enumerated() {
            guard p.count == w.storages[i].byteCount else {
                throw FormatError(.invalidValue, "payload \(i) has \(p.count) bytes, storage needs \(w.storages[i].byteCount)", offset: out.count)
            }
            out += try w.beginStorage()
            out += p
            out += try w.endStorage(crc32: crc32(p))
        }
        out += try w.finish(serializationID: serializationID)
        return out
    }
}
