/// A safetensors header (spec §10): `u64 header_len | JSON | data`.
public struct SafetensorsHeader: Sendable, Equatable {
    /// Tensors in JSON order.
    public var entries: [SafetensorsEntry]
    /// The `__metadata__` string map, if present.
    public var metadata: OrderedMap<String, String>?
    /// JSON header length in bytes (excluding the 8-byte prefix).
    public var headerLength: Int

    /// Offset of the data section from the start of the blob.
    public var dataOffset: Int { 8 + headerLength }
    /// Total bytes of the data section.
    public var dataLength: Int { entries.map(\.dataRange.upperBound).max() ?? 0 }

    /// The entry named `name`.
    public func entry(named name: String) -> SafetensorsEntry? { entries.first { $0.name == name } }

    /// Default bound on the JSON header size (100 MB, as the reference implementation).
    public static let maxHeaderLength = 100_000_000

    /// Bytes needed to parse the header of a blob whose first 8 bytes are `prefix`.
    public static func headerBytesNeeded(prefix: UnsafeRawBufferPointer, maxHeaderLength: Int = maxHeaderLength) throws(FormatError) -> Int {
        guard prefix.count >= 8 else { throw FormatError(.truncated, "expected the 8-byte safetensors header length", offset: 0) }
        let n = ByteReader.u64(prefix, 0)
        guard n <= UInt64(maxHeaderLength) else {
            throw FormatError(.invalidSafetensors, "header length \(n) exceeds \(maxHeaderLength)", offset: 0)
        }
        return 8 + Int(n)
    }

    /// Parses the header at the start of `bytes`. `bytes` must hold at least the 8-byte length and
    /// the JSON. When `dataLength` is given (e.g. file size − ``dataOffset``), the tensors must
    /// cover exactly that many bytes; otherwise only internal consistency is checked.
    public static func parse(_ bytes: UnsafeRawBufferPointer, dataLength: Int? = nil, maxHeaderLength: Int = maxHeaderLength) throws(FormatError) -> SafetensorsHeader {
        let total = try headerBytesNeeded(prefix: bytes, maxHeaderLength: maxHeaderLength)
        guard bytes.count >= total else {
            throw FormatError(.truncated, "safetensors header declares \(total - 8) JSON bytes, only \(bytes.count - 8) present", offset: 8)
        }
        let json = try JSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<total]), baseOffset: 8)
        guard case .object(let fields) = json else {
            throw FormatError(.invalidSafetensors, "header is not a JSON object", offset: 8)
        }
        var entries: [SafetensorsEntry] = []
        var metadata: OrderedMap<String, String>?
        for (name, v) in fields {
            if name == "__metadata__" {
                guard case .object(let m) = v else { throw FormatError(.invalidSafetensors, "__metadata__ is not an object", offset: 8) }
                var map = OrderedMap<String, String>()
                for (k, mv) in m {
                    guard case .string(let s) = mv else {
                        throw FormatError(.invalidSafetensors, "__metadata__['\(k)'] is not a string", offset: 8)
                    }
                    map[k] = s
                }
                metadata = map
                continue
            }
            guard case .object(let t) = v else { throw FormatError(.invalidSafetensors, "tensor '\(name)' is not an object", offset: 8) }
            var dtype: DType?
            var shape: [Int]?
            var range: Range<Int>?
            for (k, tv) in t {
                switch (k, tv) {
                case ("dtype", .string(let d)):
                    guard let dt = DType(safetensorsName: d) else {
                        throw FormatError(.unsupportedDType, "tensor '\(name)': unsupported safetensors dtype '\(d)'", offset: 8)
                    }
                    dtype = dt
                case ("shape", .array(let a)):
                    var s: [Int] = []
                    for x in a {
                        guard case .int(let i) = x, i >= 0, let ii = Int(exactly: i) else {
                            throw FormatError(.invalidSafetensors, "tensor '\(name)': shape holds a non-natural number", offset: 8)
                        }
                        s.append(ii)
                    }
                    shape = s
                case ("data_offsets", .array(let a)):
                    guard a.count == 2, case .int(let b) = a[0], case .int(let e) = a[1], b >= 0, e >= b, let bi = Int(exactly: b), let ei = Int(exactly: e) else {
                        throw FormatError(.invalidSafetensors, "tensor '\(name)': data_offsets must be [begin, end] with 0 ≤ begin ≤ end", offset: 8)
                    }
                    range = bi..<ei
                default:
                    throw FormatError(.invalidSafetensors, "tensor '\(name)': unexpected field '\(k)'", offset: 8)
                }
            }
            guard let dtype, let shape, let range else {
                throw FormatError(.invalidSafetensors, "tensor '\(name)' lacks dtype, shape or data_offsets", offset: 8)
            }
            guard let numel = Checked.product(shape), let nbytes = Checked.multiply(numel, dtype.itemSize), nbytes == range.count else {
                throw FormatError(
                    .invalidSafetensors, "tensor '\(name)': shape \(shape) of \(dtype) needs a different byte count than data_offsets \(range)", offset: 8)
            }
            entries.append(SafetensorsEntry(name: name, dtype: dtype, shape: shape, dataRange: range))
        }
        // Contiguous, non-overlapping cover of 0..<end.
        var cursor = 0
        for e in entries.sorted(by: { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }) {
            guard e.dataRange.lowerBound == cursor else {
                throw FormatError(
                    .invalidSafetensors,
                    e.dataRange.lowerBound < cursor ? "tensor '\(e.name)' overlaps another tensor" : "gap before tensor '\(e.name)' at data offset \(cursor)",
                    offset: 8)
            }
            cursor = e.dataRange.upperBound
        }
        if let dataLength {
            guard cursor == dataLength else {
                throw FormatError(.invalidSafetensors, "tensors cover \(cursor) data bytes but the data section has \(dataLength)", offset: total)
            }
        }
        return SafetensorsHeader(entries: entries, metadata: metadata, headerLength: total - 8)
    }

    /// Parses a header from an array.
    public static func parse(_ bytes: [UInt8], dataLength: Int? = nil) throws(FormatError) -> SafetensorsHeader {
        var result: Result<SafetensorsHeader, FormatError> = .failure(FormatError(.invalidSafetensors, "unreachable", offset: 0))
        bytes.withUnsafeBytes { raw in
            do throws(FormatError) { result = .success(try parse(raw, dataLength: dataLength)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    /// Encodes a header for tensors laid out back to back in the given order: returns the
    /// 8-byte length plus JSON padded with spaces so the data starts 8-aligned, and the entries.
    public static func encode(
        tensors: [(name: String, dtype: DType, shape: [Int])], metadata: OrderedMap<String, String>? = nil
    ) throws(FormatError) -> (bytes: [UInt8], header: SafetensorsHeader) {
        var json: [UInt8] = [0x7B]
        var first = true
        if let metadata {
            JSONWriter.string("__metadata__", into: &json)
            json.append(contentsOf: Array(":{".utf8))
            for (i, (k, v)) in zip(metadata.keys, metadata.values).enumerated() {
                if i > 0 { json.append(0x2C) }
                JSONWriter.string(k, into: &json)
                json.append(0x3A)
                JSONWriter.string(v, into: &json)
            }
            json.append(0x7D)
            first = false
        }
        var entries: [SafetensorsEntry] = []
        var names = Set<String>()
        var cursor = 0
        for t in tensors {
            guard let st = t.dtype.safetensorsName else {
                throw FormatError(.unsupportedDType, "\(t.dtype) has no safetensors dtype", offset: 0)
            }
            guard t.name != "__metadata__", names.insert(t.name).inserted else {
                throw FormatError(.invalidValue, "duplicate or reserved tensor name '\(t.name)'", offset: 0)
            }
            guard t.shape.allSatisfy({ $0 >= 0 }), let n = Checked.product(t.shape), let nb = Checked.multiply(n, t.dtype.itemSize),
                let end = Checked.add(cursor, nb)
            else {
                throw FormatError(.invalidValue, "invalid shape \(t.shape) for '\(t.name)'", offset: 0)
            }
            if !first { json.append(0x2C) }
            first = false
            JSONWriter.string(t.name, into: &json)
            json.append(contentsOf: Array(":{\"dtype\":\"\(st)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(cursor),\(end)]}".utf8))
            entries.append(SafetensorsEntry(name: t.name, dtype: t.dtype, shape: t.shape, dataRange: cursor..<end))
            cursor = end
        }
        json.append(0x7D)
        let pad = (8 - json.count % 8) % 8
        json.append(contentsOf: repeatElement(0x20, count: pad))
        var out = ByteWriter(capacity: json.count + 8)
        out.u64(UInt64(json.count))
        out.append(json)
        return (out.bytes, SafetensorsHeader(entries: entries, metadata: metadata, headerLength: json.count))
    }
}
