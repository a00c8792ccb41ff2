/// A non-tensor (BYTE_IO) record to read whole into a destination.
public struct BytesReadRequest: Hashable, Sendable {
    /// Fully qualified name (for messages).
    public var fqn: String
    /// Opaque file id.
    public var file: Int
    /// Record offset in the file (`_StorageInfo.offset`).
    public var offset: Int
    /// Record length (`_StorageInfo.length`).
    public var length: Int
    /// Opaque destination buffer id; the record lands at offset 0.
    public var destination: Int

    /// Creates a request.
    public init(fqn: String, file: Int, offset: Int, length: Int, destination: Int) {
        self.fqn = fqn
        self.file = file
        self.offset = offset
        self.length = length
        self.destination = destination
    }
}
