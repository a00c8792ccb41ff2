import SystemPackage

/// An error raised by the I/O engine.
///
/// Every error names the operation, and where it applies the file path and offset, and keeps the
/// underlying `Errno` and the source location that raised it.
public struct IOError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, coarsely: callers switch on this.
    public enum Code: String, Sendable, Hashable {
        /// No space left on the device (ENOSPC, EDQUOT).
        case noSpace
        /// Low-level I/O error (EIO).
        case ioError
        /// Permission denied (EACCES, EPERM).
        case permissionDenied
        /// The file does not exist (ENOENT).
        case notFound
        /// The file already exists (EEXIST) and exclusive creation was asked for.
        case alreadyExists
        /// An argument was rejected by the kernel (EINVAL, EBADF...).
        case invalidArgument
        /// A read reached the end of the file before all requested bytes were read.
        case unexpectedEndOfFile
        /// The operation was cancelled (task cancellation, ECANCELED).
        case cancelled
        /// The engine was shut down while the operation was pending.
        case shutdown
        /// The file system does not support O_DIRECT for this file.
        case directIONotSupported
        /// The file handle was already closed.
        case closed
        /// The requested backend is not available on this machine.
        case backendUnavailable
        /// A transient condition (EINTR, EAGAIN, EBUSY, short transfers) persisted past the retry bound.
        case retriesExhausted
        /// Any other errno.
        case other
    }

    /// Where an error was raised.
    public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
        /// The function.
        public var function: String
        /// The file.
        public var file: String
        /// The line.
        public var line: Int

        public init(function: String, file: String, line: Int) {
            self.function = function
            self.file = file
            self.line = line
        }

        public var description: String { "\(file):\(line) (\(function))" }
    }

    /// The kind of failure.
    public var code: Code
    /// A message naming the operation, file path and offset.
    public var message: String
    /// The path of the file involved, if any.
    public var path: String?
    /// The file offset involved, if any.
    public var offset: Int64?
    /// The bytes expected (reads reaching end of file), if any.
    public var expectedBytes: Int?
    /// The bytes actually transferred (reads reaching end of file), if any.
    public var transferredBytes: Int?
    /// The underlying system error, if any.
    public var errno: Errno?
    /// Where the error was raised.
    public var location: SourceLocation

    public init(
        code: Code, message: String, path: String? = nil, offset: Int64? = nil,
        expectedBytes: Int? = nil, transferredBytes: Int? = nil, errno: Errno? = nil,
        location: SourceLocation
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.expectedBytes = expectedBytes
        self.transferredBytes = transferredBytes
        self.errno = errno
        self.location = location
    }

    public var description: String {
        var text = "IOError.\(code.rawValue): \(message)"
        if let errno { text += "\n└─ underlying: \(errno) (errno \(errno.rawValue))" }
        text += "\n└─ at \(location)"
        return text
    }
}

extension IOError {
    /// The code that corresponds to an errno value.
    static func code(for errno: Errno) -> Code {
        switch errno {
        case .noSpace, .diskQuotaExceeded: return .noSpace
        case .ioError: return .ioError
        case .permissionDenied, .notPermitted: return .permissionDenied
        case .noSuchFileOrDirectory: return .notFound
        case .fileExists: return .alreadyExists
        case .invalidArgument, .badFileDescriptor: return .invalidArgument
        case .canceled: return .cancelled
        case .interrupted, .resourceTemporarilyUnavailable, .resourceBusy: return .retriesExhausted
        default: return .other
        }
    }

    /// An error for a failed system call on `path` (at `offset`).
    static func system(
        _ operation: String, errno: Errno, path: String?, offset: Int64? = nil,
        function: String = #function, file: String = #fileID, line: Int = #line
    ) -> IOError {
        var message = "\(operation) failed"
        if let path { message += " on '\(path)'" }
        if let offset { message += " at offset \(offset)" }
        message += ": \(errno)"
        return IOError(
            code: code(for: errno), message: message, path: path, offset: offset, errno: errno,
            location: .init(function: function, file: file, line: line))
    }

    /// An error with no errno.
    static func make(
        _ code: Code, _ message: String, path: String? = nil, offset: Int64? = nil,
        function: String = #function, file: String = #fileID, line: Int = #line
    ) -> IOError {
        IOError(
            code: code, message: message, path: path, offset: offset,
            location: .init(function: function, file: file, line: line))
    }
}
