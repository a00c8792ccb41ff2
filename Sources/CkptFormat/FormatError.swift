/// The single error type of `CkptFormat`: a malformed, truncated, hostile or unsupported input,
/// or a value that cannot be encoded.
///
/// `offset` is relative to the start of the buffer that was parsed. Callers that parsed a slice of a
/// bigger file add context with ``at(file:baseOffset:)``.
public struct FormatError: Error, Sendable, Equatable {
    /// Broad classification of the failure.
    public enum Code: String, Sendable, Equatable {
        /// The input ended before a complete structure was read.
        case truncated
        /// A field holds a value outside what the format allows.
        case invalidValue
        /// A pickle opcode that this reader does not support.
        case unsupportedOpcode
        /// A pickle referenced a global outside the allow-list.
        case forbiddenGlobal
        /// A configured safety limit (depth, items, lengths, memo, stack) was exceeded.
        case limitExceeded
        /// A zip container structure is malformed or inconsistent.
        case invalidZip
        /// A torch.save record does not have the expected structure.
        case invalidRecord
        /// A DCP `.metadata` object graph does not have the expected structure.
        case invalidMetadata
        /// A safetensors header is malformed.
        case invalidSafetensors
        /// JSON text is malformed.
        case invalidJSON
        /// A dtype name is unknown or has no representation in the target format.
        case unsupportedDType
    }

    /// Classification of the failure.
    public var code: Code
    /// What was expected and what was found.
    public var message: String
    /// Byte offset of the failure, relative to the parsed buffer plus any base offset added.
    public var offset: Int
    /// The file the buffer came from, when a caller provided it.
    public var file: String?

    /// Creates an error.
    public init(_ code: Code, _ message: String, offset: Int, file: String? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
        self.file = file
    }

    /// Returns the same error with `baseOffset` added to ``offset`` and `file` attached
    /// (an existing file name is kept when `file` is nil).
    public func at(file: String?, baseOffset: Int = 0) -> FormatError {
        var copy = self
        copy.offset += baseOffset
        if let file { copy.file = file }
        return copy
    }
}

extension FormatError: CustomStringConvertible {
    /// A readable one-line description: code, file, offset and message.
    public var description: String {
        if let file {
            return "FormatError.\(code.rawValue) in \(file) at byte \(offset): \(message)"
        }
        return "FormatError.\(code.rawValue) at byte \(offset): \(message)"
    }
}
