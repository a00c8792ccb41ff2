/// How `IOEngine.open` opens a file.
public enum IOOpenMode: Sendable, Hashable {
    /// Read only; the file must exist.
    case read
    /// Write only.
    case write(create: Bool = true, truncate: Bool = false, exclusive: Bool = false)
    /// Read and write.
    case readWrite(create: Bool = true, truncate: Bool = false, exclusive: Bool = false)
}
