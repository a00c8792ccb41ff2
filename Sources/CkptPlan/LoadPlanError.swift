/// Errors of ``LoadPlanner``: what was asked does not match what was saved, or the metadata is
/// malformed. Every message says what was saved and what was asked.
public enum LoadPlanError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The requested fqn is not in the checkpoint.
    case missingInCheckpoint(fqn: String)
    /// A tensor was asked for a non-tensor value, or a non-tensor value for a tensor.
    case kindMismatch(fqn: String, saved: String, requested: String)
    /// The requested global shape differs from the saved one.
    case shapeMismatch(fqn: String, saved: [Int], requested: [Int])
    /// The requested dtype differs from the saved one.
    case dtypeMismatch(fqn: String, saved: String, requested: String)
    /// The requested element size differs from the saved one.
    case elementSizeMismatch(fqn: String, saved: Int, requested: Int)
    /// The request itself is malformed (bad shape, a local chunk out of bounds, overflow).
    case invalidRequest(fqn: String, reason: String)
    /// The saved layout is malformed (a chunk out of bounds, overlapping chunks, overflow).
    case invalidSavedLayout(fqn: String, reason: String)
    /// Part of a requested block is in no saved chunk: `hole` is one uncovered region.
    case notCovered(fqn: String, requested: ChunkBox, hole: ChunkBox, savedChunkCount: Int)
    /// No payload location was given for a needed saved chunk.
    case missingPayload(fqn: String, savedChunk: Int, box: ChunkBox)
    /// A payload location is malformed or its length is not the chunk's byte size.
    case invalidPayload(fqn: String, savedChunk: Int, reason: String)
    /// A BYTE_IO read request is malformed.
    case invalidBytesRequest(fqn: String, reason: String)
    /// Invalid options.
    case invalidOptions(String)

    public var description: String {
        switch self {
        case .missingInCheckpoint(let fqn):
            return "'\(fqn)' was requested but the checkpoint has no entry with that name"
        case .kindMismatch(let fqn, let saved, let requested):
            return "'\(fqn)': the checkpoint holds a \(saved) but a \(requested) was requested"
        case .shapeMismatch(let fqn, let saved, let requested):
            return "tensor '\(fqn)': saved with global shape \(saved) but requested with global shape \(requested)"
        case .dtypeMismatch(let fqn, let saved, let requested):
            return "tensor '\(fqn)': saved as \(saved) but requested as \(requested)"
        case .elementSizeMismatch(let fqn, let saved, let requested):
            return "tensor '\(fqn)': saved with \(saved)-byte elements but requested with \(requested)-byte elements"
        case .invalidRequest(let fqn, let reason):
            return "tensor '\(fqn)': invalid request: \(reason)"
        case .invalidSavedLayout(let fqn, let reason):
            return "tensor '\(fqn)': invalid saved layout: \(reason)"
        case .notCovered(let fqn, let requested, let hole, let count):
            return "tensor '\(fqn)': requested block \(requested) is not fully covered by the \(count) saved chunk(s); region \(hole) was never saved"
        case .missingPayload(let fqn, let chunk, let box):
            return "tensor '\(fqn)': no payload location for needed saved chunk \(chunk) (\(box))"
        case .invalidPayload(let fqn, let chunk, let reason):
            return "tensor '\(fqn)': payload of saved chunk \(chunk): \(reason)"
        case .invalidBytesRequest(let fqn, let reason):
            return "'\(fqn)': invalid non-tensor read: \(reason)"
        case .invalidOptions(let reason):
            return "invalid read options: \(reason)"
        }
    }
}
