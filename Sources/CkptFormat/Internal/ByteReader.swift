/// Bounds-checked little-endian cursor over a borrowed byte buffer. Every read either succeeds or
/// throws `FormatError.truncated` naming the offset and what was being read.
struct ByteReader {
    let buffer: UnsafeRawBufferPointer
    var position: Int

    init(_ buffer: UnsafeRawBufferPointer, at position: Int = 0) {
        self.buffer = buffer
        self.position = position
    }

    var remaining: Int { buffer.count - position }
    var isAtEnd: Bool { position >= buffer.count }

    @inline(__always)
    func require(_ count: Int, _ what: @autoclosure () -> String) throws(FormatError) {
        guard count >= 0, count <= buffer.count - position else {
            throw FormatError(
                .truncated, "expected \(what()) (\(count) bytes), only \(Swift.max(0, remaining)) left",
                offset: position)
        }
    }

    @inline(__always)
    mutating func u8(_ what: @autoclosure () -> String = "a byte") throws(FormatError) -> UInt8 {
        try require(1, what())
        let v = buffer[position]
        position += 1
        return v
    }

    @inline(__always)
    mutating func u16(_ what: @autoclosure () -> String = "u16") throws(FormatError) -> UInt16 {
        try require(2, what())
        let v = buffer.loadUnaligned(fromByteOffset: position, as: UInt16.self)
        position += 2
        return UInt16(littleEndian: v)
    }

    @inline(__always)
    mutating func u32(_ what: @autoclosure () -> String = "u32") throws(FormatError) -> UInt32 {
        try require(4, what())
        let v = buffer.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return UInt32(littleEndian: v)
    }

    @inline(__always)
    mutating func u64(_ what: @autoclosure () -> String = "u64") throws(FormatError) -> UInt64 {
        try require(8, what())
        let v = buffer.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position += 8
        return UInt64(littleEndian: v)
    }

    mutating func bytes(_ count: Int, _ what: @autoclosure () -> String) throws(FormatError) -> UnsafeRawBufferPointer {
        try require(count, what())
        let slice = UnsafeRawBufferPointer(rebasing: buffer[position..<(position + count)])
        position += count
        return slice
    }

    mutating func skip(_ count: Int, _ what: @autoclosure () -> String) throws(FormatError) {
        try require(count, what())
        position += count
    }

    static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }
    static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }
    static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self))
    }
}

/// Growable little-endian byte sink used by the encoders.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    @inline(__always) mutating func u8(_ v: UInt8) { bytes.append(v) }
    @inline(__always) mutating func u16(_ v: UInt16) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    @inline(__always) mutating func u32(_ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    @inline(__always) mutating func u64(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    @inline(__always) mutating func append<S: Sequence>(_ s: S) where S.Element == UInt8 {
        bytes.append(contentsOf: s)
    }
    mutating func append(_ s: String) { bytes.append(contentsOf: s.utf8) }
    mutating func repeatByte(_ v: UInt8, count: Int) {
        if count > 0 { bytes.append(contentsOf: repeatElement(v, count: count)) }
    }
    var count: Int { bytes.count }
}

/// Checked integer helpers shared by parsers.
enum Checked {
    /// Product of non-negative dims, or nil on overflow / negative.
    static func product(_ dims: [Int]) -> Int? {
        var p = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (r, o) = p.multipliedReportingOverflow(by: d)
            if o { return nil }
            p = r
        }
        return p
    }

    static func multiply(_ a: Int, _ b: Int) -> Int? {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        return o ? nil : r
    }

    static func add(_ a: Int, _ b: Int) -> Int? {
        let (r, o) = a.addingReportingOverflow(b)
        return o ? nil : r
    }
}

/// C-contiguous strides of `shape`.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = acc
        acc = acc &* Swift.max(shape[i], 1)
    }
    return strides
}

/// Decodes validated UTF-8.
func decodeUTF8(_ bytes: UnsafeRawBufferPointer, offset: Int, what: String) throws(FormatError) -> String {
    guard let s = String(validating: bytes, as: UTF8.self) else {
        throw FormatError(.invalidValue, "expected valid UTF-8 in \(what)", offset: offset)
    }
    return s
}

