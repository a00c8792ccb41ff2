// The binary encoding of the messages ranks exchange through the ``Communicator``.
//
// A message is plain bytes (any transport carries it): a 4-byte header — `C`, `K`, the message
// type's tag, the format version — then a kind byte (0: payload, 1: the sending rank's error as
// a string), then the payload. Integers are LEB128 varints (signed ones zigzag-encoded), hashes
// are 8 bytes little-endian, strings are a varint byte count and UTF-8 bytes. Strings that repeat
// (fqns, dtypes, file names) may be interned: a varint `n`, where 0 introduces a new string (which
// gets the next index) and `n > 0` refers to string `n - 1` of this message.
//
// Every read is bounds-checked: a truncated or malformed message gives
// `CheckpointError.Code.protocolViolation` naming the message type, the offset and what was
// expected there.

/// The type of a wire message (its header's third byte).
enum WireTag: UInt8, Sendable, CaseIterable {
    case localPlan = 1
    case globalPlan = 2
    case writeResult = 3
    case outcome = 4
    case error = 5
    case committed = 6

    var name: String {
        switch self {
        case .localPlan: "local plan"
        case .globalPlan: "global plan"
        case .writeResult: "write result"
        case .outcome: "commit outcome"
        case .error: "error"
        case .committed: "committed metadata"
        }
    }
}

/// A message that has a binary wire form.
protocol WireMessage {
    static var wireTag: WireTag { get }
    /// The sending rank's error, carried instead of the payload.
    var error: String? { get }
    /// The message that carries `error` instead of a payload.
    init(error: String)
    /// Writes the payload (not the header or the error).
    func writePayload(to writer: inout WireWriter)
    /// Reads the payload written by ``writePayload(to:)``.
    init(payload reader: inout WireReader) throws(CheckpointError)
}

enum WireFormat {
    static let magic: (UInt8, UInt8) = (0x43, 0x4B)  // "CK"
    static let version: UInt8 = 1
    static let payloadKind: UInt8 = 0
    static let errorKind: UInt8 = 1
}

extension Wire {
    /// The wire bytes of `message`.
    static func encode<M: WireMessage>(_ message: M, capacity: Int = 256) -> [UInt8] {
        var writer = WireWriter(M.wireTag, capacity: capacity)
        if let error = message.error {
            writer.byte(WireFormat.errorKind)
            writer.string(error)
        } else {
            writer.byte(WireFormat.payloadKind)
            message.writePayload(to: &writer)
        }
        return writer.finish()
    }

    /// Decodes a message of type `M` (from a peer: untrusted, every read is checked).
    static func decode<M: WireMessage>(_ type: M.Type, _ bytes: [UInt8]) throws(CheckpointError) -> M {
        let result: Result<M, CheckpointError> = bytes.withUnsafeBytes { raw in
            do throws(CheckpointError) {
                var reader = try WireReader(raw, tag: M.wireTag)
                let kind = try reader.byte("the message kind")
                let message: M
                switch kind {
                case WireFormat.payloadKind:
                    message = try M(payload: &reader)
                case WireFormat.errorKind:
                    message = M(error: try reader.string("the error text"))
                default:
                    throw reader.failure("message kind 0 or 1, found \(kind)", at: reader.position - 1)
                }
                try reader.expectEnd()
                return .success(message)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

/// Appends a message's bytes to a growable buffer (no per-byte array appends).
struct WireWriter: ~Copyable {
    private var sink: ByteSink
    private var interned: [String: Int] = [:]
    /// Per field (`slot`), the last string interned and its index: repeats are mostly consecutive
    /// (a tensor's chunks), and comparing with it is cheaper than a dictionary lookup.
    private var recent: [(value: String, index: Int)?] = Array(repeating: nil, count: WireWriter.slots)
    static let slots = 4

    init(_ tag: WireTag, capacity: Int = 256) {
        sink = ByteSink(capacity: capacity)
        sink.byte(WireFormat.magic.0)
        sink.byte(WireFormat.magic.1)
        sink.byte(tag.rawValue)
        sink.byte(WireFormat.version)
    }

    /// The bytes written so far (the writer is consumed).
    consuming func finish() -> [UInt8] { sink.finish() }

    mutating func byte(_ value: UInt8) { sink.byte(value) }

    mutating func bool(_ value: Bool) { byte(value ? 1 : 0) }

    mutating func uvarint(_ value: UInt64) { sink.uvarint(value) }

    /// A count or length (never negative).
    mutating func count(_ value: Int) { uvarint(UInt64(max(value, 0))) }

    /// Any `Int` (zigzag).
    mutating func int(_ value: Int) {
        let v = Int64(value)
        uvarint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    mutating func ints(_ values: [Int]) {
        count(values.count)
        for v in values { int(v) }
    }

    mutating func optionalInts(_ values: [Int]?) {
        if let values {
            bool(true)
            ints(values)
        } else {
            bool(false)
        }
    }

    mutating func u64(_ value: UInt64) { sink.u64LittleEndian(value) }

    mutating func raw(_ bytes: UnsafeRawBufferPointer) { sink.append(bytes) }

    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            count(utf8.count)
            raw(UnsafeRawBufferPointer(utf8))
        }
    }

    mutating func optionalString(_ value: String?) {
        if let value {
            bool(true)
            string(value)
        } else {
            bool(false)
        }
    }

    /// A string that is likely to repeat in this message; `slot` (0..<4) names the field, for the
    /// consecutive-repeat shortcut.
    mutating func interned(_ value: String, slot: Int = 0) {
        let slot = min(max(slot, 0), Self.slots - 1)
        if let last = recent[slot], last.value == value {
            count(last.index + 1)
        } else if let index = interned[value] {
            count(index + 1)
            recent[slot] = (value, index)
        } else {
            let index = interned.count
            interned[value] = index
            recent[slot] = (value, index)
            count(0)
            string(value)
        }
    }

    /// A whole byte string (length-prefixed).
    mutating func bytes(_ value: [UInt8]) {
        value.withUnsafeBytes { raw in
            count(raw.count)
            self.raw(raw)
        }
    }
}

/// Reads a message's bytes; every read is bounds-checked.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    let tag: WireTag
    private(set) var position = 0
    private var strings: [String] = []

    /// Checks the header (magic, tag, version).
    init(_ bytes: UnsafeRawBufferPointer, tag: WireTag) throws(CheckpointError) {
        self.bytes = bytes
        self.tag = tag
        guard bytes.count >= 4 else {
            throw failure("a 4-byte header, the message has \(bytes.count) bytes", at: 0)
        }
        guard bytes[0] == WireFormat.magic.0, bytes[1] == WireFormat.magic.1 else {
            throw failure("the magic bytes 'CK', found \(bytes[0]) \(bytes[1]) (not a ckpt message)", at: 0)
        }
        guard bytes[2] == tag.rawValue else {
            let found = WireTag(rawValue: bytes[2]).map { "a \($0.name) message" } ?? "tag \(bytes[2])"
            throw failure("tag \(tag.rawValue), found \(found)", at: 2)
        }
        guard bytes[3] == WireFormat.version else {
            throw failure("format version \(WireFormat.version), found version \(bytes[3])", at: 3)
        }
        position = 4
    }

    var remaining: Int { bytes.count - position }

    func failure(_ expected: String, at offset: Int) -> CheckpointError {
        CheckpointError.protocolViolation(
            "malformed \(tag.name) message from a peer: at byte \(offset) of \(bytes.count), expected \(expected)")
    }

    func expectEnd() throws(CheckpointError) {
        guard position == bytes.count else {
            throw failure("the end of the message, found \(remaining) more bytes", at: position)
        }
    }

    mutating func byte(_ what: StaticString) throws(CheckpointError) -> UInt8 {
        guard position < bytes.count else { throw failure("\(what), the message ends", at: position) }
        let value = bytes[position]
        position += 1
        return value
    }

    mutating func bool(_ what: StaticString) throws(CheckpointError) -> Bool {
        let at = position
        switch try byte(what) {
        case 0: return false
        case 1: return true
        case let other: throw failure("\(what) (0 or 1), found \(other)", at: at)
        }
    }

    mutating func uvarint(_ what: StaticString) throws(CheckpointError) -> UInt64 {
        let start = position
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else { throw failure("\(what) (a varint), the message ends", at: position) }
            let b = bytes[position]
            position += 1
            if shift == 63 && b > 1 { throw failure("\(what) (a varint of at most 64 bits)", at: start) }
            value |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return value }
            shift += 7
            if shift > 63 { throw failure("\(what) (a varint of at most 10 bytes)", at: start) }
        }
    }

    /// A count of items that each take at least `minimumItemBytes`: bounded by what is left.
    mutating func count(_ what: StaticString, minimumItemBytes: Int = 1) throws(CheckpointError) -> Int {
        let at = position
        let value = try uvarint(what)
        guard value <= UInt64(remaining / max(minimumItemBytes, 1)) else {
            throw failure("\(what), found \(value), more than the \(remaining) bytes left can hold", at: at)
        }
        return Int(value)
    }

    mutating func int(_ what: StaticString) throws(CheckpointError) -> Int {
        let at = position
        let z = try uvarint(what)
        let value = Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1)))
        guard let result = Int(exactly: value) else { throw failure("\(what) within Int range", at: at) }
        return result
    }

    /// A non-negative `Int`.
    mutating func natural(_ what: StaticString) throws(CheckpointError) -> Int {
        let at = position
        let value = try int(what)
        guard value >= 0 else { throw failure("\(what) (non-negative), found \(value)", at: at) }
        return value
    }

    mutating func ints(_ what: StaticString) throws(CheckpointError) -> [Int] {
        let n = try count(what)
        var out: [Int] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try int(what)) }
        return out
    }

    mutating func optionalInts(_ what: StaticString) throws(CheckpointError) -> [Int]? {
        try bool(what) ? try ints(what) : nil
    }

    mutating func u64(_ what: StaticString) throws(CheckpointError) -> UInt64 {
        guard remaining >= 8 else { throw failure("\(what) (8 bytes), \(remaining) left", at: position) }
        let value = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
        position += 8
        return value
    }

    mutating func string(_ what: StaticString) throws(CheckpointError) -> String {
        let n = try count(what)
        let at = position
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
        guard let value = String(validating: slice.assumingMemoryBound(to: UInt8.self), as: UTF8.self) else {
            throw failure("\(what) (\(n) bytes of UTF-8)", at: at)
        }
        position += n
        return value
    }

    mutating func optionalString(_ what: StaticString) throws(CheckpointError) -> String? {
        try bool(what) ? try string(what) : nil
    }

    mutating func interned(_ what: StaticString) throws(CheckpointError) -> String {
        let at = position
        let reference = try uvarint(what)
        if reference == 0 {
            let value = try string(what)
            strings.append(value)
            return value
        }
        guard reference <= UInt64(strings.count) else {
            throw failure("\(what) (string reference 1...\(strings.count)), found \(reference)", at: at)
        }
        return strings[Int(reference) - 1]
    }

    mutating func bytes(_ what: StaticString) throws(CheckpointError) -> [UInt8] {
        let n = try count(what)
        let value = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)]))
        position += n
        return value
    }
}
