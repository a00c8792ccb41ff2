import Glibc

/// One piece of a read or write, after splitting by alignment and block size.
///
/// `@unchecked Sendable`: it carries the caller's raw address; the engine awaits every piece
/// before the public call returns, so the memory outlives it.
struct Piece: @unchecked Sendable {
    enum Route {
        /// Through the file's buffered descriptor (the only one for non-direct files).
        case plain
        /// O_DIRECT straight from/to the caller's (aligned) memory.
        case direct
        /// O_DIRECT through a pool buffer (the caller's memory is not aligned).
        case staged
    }

    var kind: RawOp.Kind
    var file: IOFile
    var route: Route
    var offset: Int64
    var address: UnsafeMutableRawPointer
    var length: Int
    /// The public request this piece belongs to (for end-of-file errors).
    var requestOffset: Int64
    var requestLength: Int
    /// A vectored piece's segments (consecutive in the file from `offset`, `length` in total);
    /// `address` is then the first one's.
    var segments: [Segment]? = nil

    struct Segment {
        var address: UnsafeMutableRawPointer
        var length: Int
    }
}

/// A unit of the windowed executor: a batch of pieces submitted together, or one staged piece.
struct TransferUnit: Sendable {
    var pieces: [Piece]
    var staged: Bool
    var weight: Int { pieces.count }
}

enum Alignment {
    static let size = 4096

    static func isAligned(_ value: Int) -> Bool { value & (size - 1) == 0 }
    static func isAligned(_ value: Int64) -> Bool { value & Int64(size - 1) == 0 }
    static func isAligned(_ pointer: UnsafeRawPointer) -> Bool { isAligned(Int(bitPattern: pointer)) }
    static func roundUp(_ value: Int64) -> Int64 { (value + Int64(size - 1)) & ~Int64(size - 1) }
    static func roundDown(_ value: Int64) -> Int64 { value & ~Int64(size - 1) }
}
