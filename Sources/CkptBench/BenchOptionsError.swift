/// Why the benchmark options are unusable. Descriptions are written for the person at the terminal.
public enum BenchOptionsError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A size such as `--size` could not be parsed.
    case invalidSize(text: String, reason: String)
    /// A rank list such as `--ranks` could not be parsed.
    case invalidRankList(text: String, reason: String)
    /// Another option has an unusable value.
    case invalidValue(option: String, value: String, reason: String)
    /// The benchmark directory does not exist.
    case directoryMissing(path: String)
    /// The benchmark path is not a directory.
    case notADirectory(path: String)
    /// The benchmark directory cannot be written (errno from `access(W_OK)`).
    case directoryNotWritable(path: String, errno: Int32)
    /// Not enough free disk space for what the run writes.
    case insufficientDisk(path: String, needed: Int, free: Int, breakdown: String)
    /// Not enough available memory for the state and the single-file gather.
    case insufficientMemory(needed: Int, available: Int, breakdown: String)

    public var description: String {
        switch self {
        case .invalidSize(let text, let reason):
            return "invalid size '\(text)': \(reason) (examples: 256M, 1G, 4GiB, 1.5G; units are binary)"
        case .invalidRankList(let text, let reason):
            return "invalid rank list '\(text)': \(reason) (examples: 4, 1,2,4,8, 1-4)"
        case .invalidValue(let option, let value, let reason):
            return "invalid value '\(value)' for \(option): \(reason)"
        case .directoryMissing(let path):
            return "benchmark directory \(path) does not exist (create it or pass --dir)"
        case .notADirectory(let path):
            return "benchmark path \(path) is not a directory"
        case .directoryNotWritable(let path, let errno):
            return "benchmark directory \(path) is not writable (errno \(errno))"
        case .insufficientDisk(let path, let needed, let free, let breakdown):
            return "not enough free space in \(path): the run writes up to \(ByteFormat.binary(needed)) "
                + "(\(breakdown)) but only \(ByteFormat.binary(free)) is free; use a smaller --size or another --dir"
        case .insufficientMemory(let needed, let available, let breakdown):
            return "not enough memory: the run needs about \(ByteFormat.binary(needed)) (\(breakdown)) "
                + "but MemAvailable is \(ByteFormat.binary(available)); use a smaller --size"
        }
    }
}
