import Synchronization

/// An open file of an `IOEngine`.
///
/// A file opened with `direct: true` has a main descriptor opened with O_DIRECT and a companion
/// buffered descriptor on the same file used for the parts of transfers that are not
/// 4096-aligned (Linux keeps the page cache coherent with direct I/O on other ranges, and one
/// fsync flushes the whole inode).
public final class IOFile: Sendable, CustomStringConvertible {
    /// The path the file was opened with.
    public let path: String
    /// The mode it was opened with.
    public let mode: IOOpenMode
    /// Whether transfers use O_DIRECT.
    public let isDirect: Bool
    /// True when O_DIRECT was asked for but the file system refused it (EINVAL), so the file was
    /// opened buffered instead.
    public let directFallback: Bool

    let fd: Int32
    /// The buffered companion of a direct file (`fd` itself otherwise).
    let bufferedFD: Int32
    let closed = Atomic<Bool>(false)

    init(path: String, mode: IOOpenMode, isDirect: Bool, directFallback: Bool, fd: Int32, bufferedFD: Int32) {
        self.path = path
        self.mode = mode
        self.isDirect = isDirect
        self.directFallback = directFallback
        self.fd = fd
        self.bufferedFD = bufferedFD
    }

    /// Whether `IOEngine.close(_:)` was called.
    public var isClosed: Bool { closed.load(ordering: .acquiring) }

    public var description: String {
        "IOFile(\(path), \(isDirect ? "O_DIRECT" : "buffered")\(directFallback ? ", direct refused" : ""))"
    }
}
