/// A strict, bounded JSON parser (RFC 8259) for safetensors headers. Objects keep key order and
/// duplicate keys are rejected.
enum JSONValue: Equatable {
    case null
    case bool(Bool)
    /// Integer literal (no fraction/exponent) that fits Int64.
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }
}

struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var pos = 0
    let base: Int
    let maxDepth: Int

    init(_ bytes: UnsafeRawBufferPointer, baseOffset: Int = 0, maxDepth: Int = 64) {
        self.bytes = bytes
        self.base = baseOffset
        self.maxDepth = maxDepth
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, baseOffset: Int = 0) throws(FormatError) -> JSONValue {
        var p = JSONParser(bytes, baseOffset: baseOffset)
        p.skipWS()
        let v = try p.value(depth: 0)
        p.skipWS()
        guard p.pos == bytes.count else { throw p.fail("expected end of JSON text") }
        return v
    }

    static func parse(_ text: String) throws(FormatError) -> JSONValue {
        var utf8 = Array(text.utf8)
        var result: Result<JSONValue, FormatError> = .failure(FormatError(.invalidJSON, "unreachable", offset: 0))
        utf8.withUnsafeMutableBytes { raw in
            do throws(FormatError) { result = .success(try parse(UnsafeRawBufferPointer(raw))) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    func fail(_ m: String) -> FormatError { FormatError(.invalidJSON, m, offset: base + pos) }

    mutating func skipWS() {
        while pos < bytes.count, bytes[pos] == 0x20 || bytes[pos] == 0x0A || bytes[pos] == 0x0D || bytes[pos] == 0x09 { pos += 1 }
    }

    mutating func expect(_ lit: String) throws(FormatError) {
        for b in lit.utf8 {
            guard pos < bytes.count, bytes[pos] == b else { throw fail("expected '\(lit)'") }
            pos += 1
        }
    }

    mutating func value(depth: Int) throws(FormatError) -> JSONValue {
        guard depth < maxDepth else { throw FormatError(.limitExceeded, "JSON nested deeper than \(maxDepth)", offset: base + pos) }
        guard pos < bytes.count else { throw FormatError(.truncated, "expected a JSON value", offset: base + pos) }
        switch bytes[pos] {
        case 0x7B:  // {
            pos += 1
            var out: [(String, JSONValue)] = []
            var seen = Set<String>()
            skipWS()
            if pos < bytes.count, bytes[pos] == 0x7D {
                pos += 1
                return .object(out)
            }
            while true {
                skipWS()
                guard pos < bytes.count, bytes[pos] == 0x22 else { throw fail("expected an object key string") }
                let keyAt = pos
                let k = try string()
                guard seen.insert(k).inserted else { throw FormatError(.invalidJSON, "duplicate key '\(k)'", offset: base + keyAt) }
                skipWS()
                try expect(":")
                skipWS()
                out.append((k, try value(depth: depth + 1)))
                skipWS()
                guard pos < bytes.count else { throw FormatError(.truncated, "unterminated object", offset: base + pos) }
                if bytes[pos] == 0x2C {
                    pos += 1
                    continue
                }
                if bytes[pos] == 0x7D {
                    pos += 1
                    return .object(out)
                }
                throw fail("expected ',' or '}'")
            }
        case 0x5B:  // [
            pos += 1
            var out: [JSONValue] = []
            skipWS()
            if pos < bytes.count, bytes[pos] == 0x5D {
                pos += 1
                return .array(out)
            }
            while true {
                skipWS()
                out.append(try value(depth: depth + 1))
                skipWS()
                guard pos < bytes.count else { throw FormatError(.truncated, "unterminated array", offset: base + pos) }
                if bytes[pos] == 0x2C {
                    pos += 1
                    continue
                }
                if bytes[pos] == 0x5D {
                    pos += 1
                    return .array(out)
                }
                throw fail("expected ',' or ']'")
            }
        case 0x22: return .string(try string())
        case 0x74:
            try expect("true")
            return .bool(true)
        case 0x66:
            try expect("false")
            return .bool(false)
        case 0x6E:
            try expect("null")
            return .null
        default:
            return try number()
        }
    }

    mutating func number() throws(FormatError) -> JSONValue {
        let start = pos
        if pos < bytes.count, bytes[pos] == 0x2D { pos += 1 }
        guard pos < bytes.count, bytes[pos] >= 0x30 && bytes[pos] <= 0x39 else { throw fail("expected a JSON value") }
        if bytes[pos] == 0x30 {
            pos += 1
        } else {
            while pos < bytes.count, bytes[pos] >= 0x30 && bytes[pos] <= 0x39 { pos += 1 }
        }
        var isInt = true
        if pos < bytes.count, bytes[pos] == 0x2E {
            isInt = false
            pos += 1
            let d = pos
            while pos < bytes.count, bytes[pos] >= 0x30 && bytes[pos] <= 0x39 { pos += 1 }
            guard pos > d else { throw fail("expected digits after '.'") }
        }
        if pos < bytes.count, bytes[pos] == 0x65 || bytes[pos] == 0x45 {
            isInt = false
            pos += 1
            if pos < bytes.count, bytes[pos] == 0x2B || bytes[pos] == 0x2D { pos += 1 }
            let d = pos
            while pos < bytes.count, bytes[pos] >= 0x30 && bytes[pos] <= 0x39 { pos += 1 }
            guard pos > d else { throw fail("expected exponent digits") }
        }
        guard pos - start <= 64 else { throw fail("number literal too long") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        if isInt, let i = Int64(text) { return .int(i) }
        guard let d = Double(text) else { throw FormatError(.invalidJSON, "number '\(text)' out of range", offset: base + start) }
        return .double(d)
    }

    mutating func hex4() throws(FormatError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw FormatError(.truncated, "expected 4 hex digits", offset: base + pos) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    mutating func string() throws(FormatError) -> String {
        pos += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard pos < bytes.count else { throw FormatError(.truncated, "unterminated string", offset: base + pos) }
            let c = bytes[pos]
            if c == 0x22 {
                pos += 1
                break
            }
            guard c >= 0x20 else { throw fail("control character in string") }
            if c != 0x5C {
                out.append(c)
                pos += 1
                continue
            }
            pos += 1
            guard pos < bytes.count else { throw FormatError(.truncated, "unterminated escape", offset: base + pos) }
            let e = bytes[pos]
            pos += 1
            switch e {
            case 0x22: out.append(0x22)
            case 0x5C: out.append(0x5C)
            case 0x2F: out.append(0x2F)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    try expect("\\u")
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw fail("unpaired surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar < 0xE000 {
                    throw fail("unpaired surrogate")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw fail("invalid escape")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
        return s
    }
}

enum JSONWriter {
    static func string(_ s: String, into out: inout [UInt8]) {
        out.append(0x22)
        for b in s.utf8 {
            switch b {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(0x22)
    }
}
