/// JSON text as Foundation's `JSONEncoder` spells it: strings escape `"`, `\`, `/` and control
/// characters (`\b \t \n \f \r`, others `\u00xx`), other bytes are copied; integers in decimal.
struct JSONBytesWriter: ~Copyable {
    private var sink: ByteSink

    init(capacity: Int) { sink = ByteSink(capacity: capacity) }

    consuming func finish() -> [UInt8] { sink.finish() }

    mutating func literal(_ text: StaticString) { sink.append(text) }

    mutating func byte(_ value: UInt8) { sink.byte(value) }

    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            sink.byte(UInt8(ascii: "\""))
            var runStart = 0
            for i in 0..<utf8.count {
                let b = utf8[i]
                guard b < 0x20 || b == 0x22 || b == 0x5C || b == 0x2F else { continue }
                sink.append(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[runStart..<i]))
                runStart = i + 1
                switch b {
                case 0x22: sink.append("\\\"")
                case 0x5C: sink.append("\\\\")
                case 0x2F: sink.append("\\/")
                case 0x08: sink.append("\\b")
                case 0x09: sink.append("\\t")
                case 0x0A: sink.append("\\n")
                case 0x0C: sink.append("\\f")
                case 0x0D: sink.append("\\r")
                default:
                    sink.append("\\u00")
                    sink.byte(Self.hexDigit(b >> 4))
                    sink.byte(Self.hexDigit(b & 0xF))
                }
            }
            sink.append(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[runStart..<utf8.count]))
            sink.byte(UInt8(ascii: "\""))
        }
    }

    mutating func int(_ value: Int) {
        if value < 0 { sink.byte(UInt8(ascii: "-")) }
        decimal(value.magnitude)
    }

    private mutating func decimal(_ value: UInt) {
        // At most 20 digits.
        sink.reserve(20)
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var n = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[n] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: v % 10)
                v /= 10
                n += 1
            } while v > 0
            for i in stride(from: n - 1, through: 0, by: -1) { sink.byteUnchecked(buffer[i]) }
        }
    }

    /// Lowercase hex without leading zeros (as `String(value, radix: 16)`).
    mutating func hex(_ value: UInt64) {
        sink.reserve(16)
        var started = false
        for shift in stride(from: 60, through: 0, by: -4) {
            let digit = UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xF
            if digit != 0 || started || shift == 0 {
                started = true
                sink.byteUnchecked(Self.hexDigit(digit))
            }
        }
    }

    static func hexDigit(_ d: UInt8) -> UInt8 { d < 10 ? UInt8(ascii: "0") + d : UInt8(ascii: "a") + d - 10 }
}

/// Why a sidecar did not parse (`offset` is a byte offset in the file).
struct SidecarParseError: Error {
    var offset: Int
    var message: String
    /// Well-formed, but another format, version or algorithm.
    var unsupported = false
}

/// A strict JSON (RFC 8259) parser for the checksum sidecar's one shape: every read bounds-checked,
/// nesting of skipped values limited, duplicate keys refused, unknown keys ignored.
struct SidecarParser {
    let bytes: UnsafeRawBufferPointer
    var pos = 0
    static let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func fail(_ expected: String, at offset: Int? = nil) -> SidecarParseError {
        SidecarParseError(offset: offset ?? pos, message: expected)
    }

    mutating func sidecar() throws(SidecarParseError) -> ChecksumSidecar {
        var format: String?, version: Int?, algorithm: String?, saveID: String?
        var entries: [ChecksumSidecar.Entry]?
        let start = skipWhitespaceAndPosition()
        try object { (parser: inout SidecarParser, key: Key, at: Int) throws(SidecarParseError) in
            switch key {
            case .format: format = try parser.once(format, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.string() }
            case .version: version = try parser.once(version, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.integer() }
            case .algorithm: algorithm = try parser.once(algorithm, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.string() }
            case .saveID: saveID = try parser.once(saveID, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.string() }
            case .entries: entries = try parser.once(entries, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.entryList() }
            default: try parser.skipValue(depth: 1)
            }
        }
        skipWhitespace()
        guard pos == bytes.count else { throw fail("the end of the file after the top-level object") }
        guard let format, let version, let algorithm, let saveID, let entries else {
            let missing = [("format", format == nil), ("version", version == nil), ("algorithm", algorithm == nil),
                           ("saveID", saveID == nil), ("entries", entries == nil)].filter(\.1).map(\.0)
            throw fail("the key(s) \(missing.joined(separator: ", ")) in the top-level object", at: start)
        }
        guard format == ChecksumSidecar.format, version == ChecksumSidecar.version,
            algorithm == ChecksumSidecar.algorithm
        else {
            var error = fail("\(format) v\(version) \(algorithm)", at: start)
            error.unsupported = true
            throw error
        }
        var sidecar = ChecksumSidecar(saveID: saveID)
        sidecar.entries = entries
        return sidecar
    }

    private mutating func entryList() throws(SidecarParseError) -> [ChecksumSidecar.Entry] {
        var entries: [ChecksumSidecar.Entry] = []
        // Each entry takes well over 64 bytes.
        entries.reserveCapacity(bytes.count / 64)
        try array { (parser: inout SidecarParser) throws(SidecarParseError) in entries.append(try parser.entry()) }
        return entries
    }

    private mutating func entry() throws(SidecarParseError) -> ChecksumSidecar.Entry {
        var fqn: String?, offsets: [Int]??, file: String?
        var recordOffset: Int?, recordLength: Int?, payloadOffset: Int?, payloadLength: Int?, xxh3: UInt64?
        let start = skipWhitespaceAndPosition()
        try object { (p: inout SidecarParser, key: Key, at: Int) throws(SidecarParseError) in
            switch key {
            case .fqn: fqn = try p.once(fqn, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.string() }
            case .file: file = try p.once(file, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.string() }
            case .offsets:
                offsets = try p.once(offsets, at: at) { (p: inout SidecarParser) throws(SidecarParseError) -> [Int]? in
                    p.skipWhitespace()
                    if p.pos < p.bytes.count, p.bytes[p.pos] == UInt8(ascii: "n") {
                        try p.expectLiteral("null")
                        return nil
                    }
                    return try p.integerList()
                }
            case .recordOffset: recordOffset = try p.once(recordOffset, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.integer() }
            case .recordLength: recordLength = try p.once(recordLength, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.integer() }
            case .payloadOffset: payloadOffset = try p.once(payloadOffset, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.integer() }
            case .payloadLength: payloadLength = try p.once(payloadLength, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.integer() }
            case .xxh3: xxh3 = try p.once(xxh3, at: at) { (p: inout SidecarParser) throws(SidecarParseError) in try p.hexString() }
            default: try p.skipValue(depth: 2)
            }
        }
        guard let fqn, let file, let recordOffset, let recordLength, let payloadOffset, let payloadLength, let xxh3 else {
            let missing = [("file", file == nil), ("fqn", fqn == nil), ("payloadLength", payloadLength == nil),
                           ("payloadOffset", payloadOffset == nil), ("recordLength", recordLength == nil),
                           ("recordOffset", recordOffset == nil), ("xxh3", xxh3 == nil)].filter(\.1).map(\.0)
            throw fail("the key(s) \(missing.joined(separator: ", ")) in a sidecar entry", at: start)
        }
        return ChecksumSidecar.Entry(
            fqn: fqn, offsets: offsets ?? nil, file: file, recordOffset: recordOffset, recordLength: recordLength,
            payloadOffset: payloadOffset, payloadLength: payloadLength, xxh3Value: xxh3)
    }

    /// Reads a key's value once; a repeated key is an error.
    private mutating func once<T>(
        _ current: T?, at: Int, _ read: (inout SidecarParser) throws(SidecarParseError) -> T
    ) throws(SidecarParseError) -> T {
        guard current == nil else { throw fail("each key once, found a duplicate key", at: at) }
        return try read(&self)
    }

    // MARK: - JSON structure

    enum Key {
        case format, version, algorithm, saveID, entries
        case fqn, file, offsets, recordOffset, recordLength, payloadOffset, payloadLength, xxh3
        case other
    }

    private static let keys: [(StaticString, Key)] = [
        ("format", .format), ("version", .version), ("algorithm", .algorithm), ("saveID", .saveID),
        ("entries", .entries), ("fqn", .fqn), ("file", .file), ("offsets", .offsets),
        ("recordOffset", .recordOffset), ("recordLength", .recordLength), ("payloadOffset", .payloadOffset),
        ("payloadLength", .payloadLength), ("xxh3", .xxh3),
    ]

    private static func key(of utf8: UnsafeRawBufferPointer) -> Key {
        for (name, key) in keys where name.utf8CodeUnitCount == utf8.count {
            let equal = name.withUTF8Buffer { candidate in
                zip(candidate, utf8).allSatisfy { $0 == $1 }
            }
            if equal { return key }
        }
        return .other
    }

    private mutating func object(
        _ member: (inout SidecarParser, Key, Int) throws(SidecarParseError) -> Void
    ) throws(SidecarParseError) {
        skipWhitespace()
        try expectByte(UInt8(ascii: "{"), "'{' (an object)")
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") {
            pos += 1
            return
        }
        while true {
            skipWhitespace()
            let at = pos
            let key = try keyName()
            skipWhitespace()
            try expectByte(UInt8(ascii: ":"), "':' after an object key")
            try member(&self, key, at)
            skipWhitespace()
            guard pos < bytes.count else { throw fail("',' or '}' in an object, the file ends") }
            let b = bytes[pos]
            pos += 1
            if b == UInt8(ascii: "}") { return }
            guard b == UInt8(ascii: ",") else { throw fail("',' or '}' in an object", at: pos - 1) }
        }
    }

    private mutating func array(
        _ element: (inout SidecarParser) throws(SidecarParseError) -> Void
    ) throws(SidecarParseError) {
        skipWhitespace()
        try expectByte(UInt8(ascii: "["), "'[' (an array)")
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
            pos += 1
            return
        }
        while true {
            try element(&self)
            skipWhitespace()
            guard pos < bytes.count else { throw fail("',' or ']' in an array, the file ends") }
            let b = bytes[pos]
            pos += 1
            if b == UInt8(ascii: "]") { return }
            guard b == UInt8(ascii: ",") else { throw fail("',' or ']' in an array", at: pos - 1) }
        }
    }

    private mutating func keyName() throws(SidecarParseError) -> Key {
        let at = pos
        if let raw = try plainStringBytes() { return Self.key(of: raw) }
        pos = at
        var decoded = try string()
        return decoded.withUTF8 { Self.key(of: UnsafeRawBufferPointer($0)) }
    }

    /// The bytes of a string without escapes, or nil (at the first backslash) when it has escapes.
    private mutating func plainStringBytes() throws(SidecarParseError) -> UnsafeRawBufferPointer? {
        try expectByte(UInt8(ascii: "\""), "'\"' (a string)")
        let start = pos
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                pos += 1
                return UnsafeRawBufferPointer(rebasing: bytes[start..<(pos - 1)])
            }
            if b == UInt8(ascii: "\\") { return nil }
            guard b >= 0x20 else { throw fail("no raw control character in a string") }
            pos += 1
        }
        throw fail("the closing '\"' of a string, the file ends")
    }

    mutating func string() throws(SidecarParseError) -> String {
        skipWhitespace()
        let open = pos
        if let raw = try plainStringBytes() {
            guard let s = String(validating: raw.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else {
                throw fail("a string of valid UTF-8", at: open)
            }
            return s
        }
        // With escapes: decode into bytes, then validate.
        pos = open + 1
        var out: [UInt8] = []
        while true {
            guard pos < bytes.count else { throw fail("the closing '\"' of a string, the file ends") }
            let b = bytes[pos]
            pos += 1
            switch b {
            case UInt8(ascii: "\""):
                guard let s = String(validating: out, as: UTF8.self) else { throw fail("a string of valid UTF-8", at: open) }
                return s
            case UInt8(ascii: "\\"):
                guard pos < bytes.count else { throw fail("an escape character, the file ends") }
                let e = bytes[pos]
                pos += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                            throw fail("a low surrogate escape after a high surrogate")
                        }
                        pos += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("a low surrogate (DC00-DFFF)", at: pos - 4) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw fail("no lone low surrogate", at: pos - 4)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail("a Unicode scalar", at: pos - 4) }
                    out.append(contentsOf: String(Character(unicode)).utf8)
                default:
                    throw fail("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u)", at: pos - 1)
                }
            default:
                guard b >= 0x20 else { throw fail("no raw control character in a string", at: pos - 1) }
                out.append(b)
            }
        }
    }

    private mutating func hex4() throws(SidecarParseError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("4 hex digits, the file ends") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let d = Self.hexValue(bytes[pos]) else { throw fail("a hex digit") }
            value = value << 4 | UInt32(d)
            pos += 1
        }
        return value
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// A string of 1 to 16 hex digits (an XXH3-64).
    private mutating func hexString() throws(SidecarParseError) -> UInt64 {
        skipWhitespace()
        let at = pos
        guard let raw = try plainStringBytes(), (1...16).contains(raw.count) else {
            throw fail("a string of 1 to 16 hex digits (an XXH3-64)", at: at)
        }
        var value: UInt64 = 0
        for b in raw {
            guard let d = Self.hexValue(b) else { throw fail("a string of 1 to 16 hex digits (an XXH3-64)", at: at) }
            value = value << 4 | UInt64(d)
        }
        return value
    }

    /// A JSON number that is an integer in `Int` range (no fraction or exponent).
    mutating func integer() throws(SidecarParseError) -> Int {
        skipWhitespace()
        let at = pos
        var negative = false
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "-") {
            negative = true
            pos += 1
        }
        let digitsStart = pos
        var magnitude: UInt64 = 0
        while pos < bytes.count, bytes[pos] >= UInt8(ascii: "0"), bytes[pos] <= UInt8(ascii: "9") {
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(bytes[pos] - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw fail("an integer within 64 bits", at: at) }
            magnitude = sum
            pos += 1
        }
        let digits = pos - digitsStart
        guard digits > 0 else { throw fail("an integer", at: at) }
        guard digits == 1 || bytes[digitsStart] != UInt8(ascii: "0") else { throw fail("an integer without leading zeros", at: at) }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") || bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            throw fail("an integer (no fraction or exponent)", at: at)
        }
        if negative {
            guard magnitude <= UInt64(Int.max) + 1 else { throw fail("an integer within Int range", at: at) }
            return Int(truncatingIfNeeded: 0 &- magnitude)
        }
        guard magnitude <= UInt64(Int.max) else { throw fail("an integer within Int range", at: at) }
        return Int(magnitude)
    }

    private mutating func integerList() throws(SidecarParseError) -> [Int] {
        var out: [Int] = []
        try array { (p: inout SidecarParser) throws(SidecarParseError) in out.append(try p.integer()) }
        return out
    }

    /// Skips any JSON value (for unknown keys).
    private mutating func skipValue(depth: Int) throws(SidecarParseError) {
        guard depth < Self.maxDepth else { throw fail("JSON nested at most \(Self.maxDepth) deep") }
        skipWhitespace()
        guard pos < bytes.count else { throw fail("a JSON value, the file ends") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            try object { (p: inout SidecarParser, _: Key, _: Int) throws(SidecarParseError) in try p.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            try array { (p: inout SidecarParser) throws(SidecarParseError) in try p.skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""):
            _ = try string()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        default: try skipNumber()
        }
    }

    private mutating func skipNumber() throws(SidecarParseError) {
        let at = pos
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        func digits(_ p: inout SidecarParser) -> Int {
            let start = p.pos
            while p.pos < p.bytes.count, p.bytes[p.pos] >= UInt8(ascii: "0"), p.bytes[p.pos] <= UInt8(ascii: "9") { p.pos += 1 }
            return p.pos - start
        }
        guard digits(&self) > 0 else { throw fail("a JSON value", at: at) }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            guard digits(&self) > 0 else { throw fail("digits after '.'") }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            guard digits(&self) > 0 else { throw fail("exponent digits") }
        }
    }

    private mutating func expectLiteral(_ text: StaticString) throws(SidecarParseError) {
        let at = pos
        let matched = text.withUTF8Buffer { lit -> Bool in
            guard pos + lit.count <= bytes.count else { return false }
            for (i, b) in lit.enumerated() where bytes[pos + i] != b { return false }
            return true
        }
        guard matched else { throw fail("'\(text)'", at: at) }
        pos += text.utf8CodeUnitCount
    }

    private mutating func expectByte(_ b: UInt8, _ what: String) throws(SidecarParseError) {
        guard pos < bytes.count else { throw fail("\(what), the file ends") }
        guard bytes[pos] == b else { throw fail(what) }
        pos += 1
    }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x0A, 0x0D, 0x09: pos += 1
            default: return
            }
        }
    }

    private mutating func skipWhitespaceAndPosition() -> Int {
        skipWhitespace()
        return pos
    }
}
