/// One stored (uncompressed) entry of a zip archive, with offsets relative to the archive start.
public struct ZipEntry: Sendable, Equatable {
    /// Full entry name, e.g. `archive/data/0`.
    public var name: String
    /// General-purpose flags (torch: `0x0808`, or `0x0800` for empty payloads).
    public var flags: UInt16
    /// CRC-32 recorded in the central directory.
    public var crc32: UInt32
    /// Payload byte count.
    public var size: Int
    /// Offset of the local file header.
    public var localHeaderOffset: Int
    /// Offset of the first payload byte (`localHeaderOffset + 30 + name + extra`); 0 when only the
    /// central directory was parsed.
    public var payloadOffset: Int
    /// Offset just past the payload and its data descriptor; 0 when only the central directory was parsed.
    public var endOffset: Int

    /// Payload byte range within the archive.
    public var payloadRange: Range<Int> { payloadOffset..<(payloadOffset + size) }

    /// Creates an entry description.
    public init(name: String, flags: UInt16, crc32: UInt32, size: Int, localHeaderOffset: Int, payloadOffset: Int = 0, endOffset: Int = 0) {
        self.name = name
        self.flags = flags
        self.crc32 = crc32
        self.size = size
        self.localHeaderOffset = localHeaderOffset
        self.payloadOffset = payloadOffset
        self.endOffset = endOffset
    }
}
