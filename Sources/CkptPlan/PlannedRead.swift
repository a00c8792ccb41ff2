/// One read of a byte range of a file, and where its bytes go.
///
/// A read never leaves the payload of one saved chunk (or one BYTE_IO record). Bytes of the read
/// no scatter entry mentions are gap bytes read to save a request; overlapping scatter entries
/// happen when several destinations need the same bytes.
public struct PlannedRead: Hashable, Sendable {
    /// Byte offset in the file.
    public var offset: Int
    /// Length in bytes.
    public var length: Int
    /// Destinations of the read's bytes, by increasing buffer offset.
    public var scatter: [ScatterEntry]

    /// Creates a read.
    public init(offset: Int, length: Int, scatter: [ScatterEntry]) {
        self.offset = offset
        self.length = length
        self.scatter = scatter
    }

    /// True when the whole read lands contiguously in one destination: it can be read straight into
    /// `scatter[0].destination` at `scatter[0].destinationOffset`, with no staging buffer.
    public var isDirect: Bool {
        scatter.count == 1 && scatter[0].bufferOffset == 0 && scatter[0].length == length
    }
}
