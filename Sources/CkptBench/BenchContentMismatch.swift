/// The first byte where a buffer differs from the deterministic content of its chunk.
public struct BenchContentMismatch: Sendable, Hashable, CustomStringConvertible {
    /// The tensor.
    public var fqn: String
    /// Offset of the byte in the whole tensor (row-major, densely packed).
    public var globalByteOffset: Int
    /// Offset of the byte in the checked buffer.
    public var bufferByteOffset: Int
    /// Global coordinates of the element holding the byte.
    public var elementCoordinates: [Int]
    /// The byte the content should have.
    public var expected: UInt8
    /// The byte found.
    public var actual: UInt8

    /// Creates a mismatch record.
    public init(
        fqn: String, globalByteOffset: Int, bufferByteOffset: Int, elementCoordinates: [Int],
        expected: UInt8, actual: UInt8
    ) {
        self.fqn = fqn
        self.globalByteOffset = globalByteOffset
        self.bufferByteOffset = bufferByteOffset
        self.elementCoordinates = elementCoordinates
        self.expected = expected
        self.actual = actual
    }

    public var description: String {
        let coordinates = elementCoordinates.map(String.init).joined(separator: ", ")
        return "\(fqn): global byte \(globalByteOffset) (element [\(coordinates)], buffer byte "
            + "\(bufferByteOffset)) is 0x\(hex(actual)), expected 0x\(hex(expected))"
    }
}

private func hex(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16)
    return digits.count == 1 ? "0" + digits : digits
}
