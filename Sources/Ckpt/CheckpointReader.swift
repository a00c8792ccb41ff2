public import CkptFormat
public import CkptIO

/// Reads a committed checkpoint from one process, without collectives: for tools (inspect,
/// consolidate, reshard) and for loading pieces of a checkpoint repeatedly with one decoded
/// `.metadata`.
public struct CheckpointReader: Sendable {
    public let directory: String
    public let engine: IOEngine
    public let options: CheckpointOptions
    /// The decoded `.metadata`.
    public let metadata: DCPMetadata
    /// Whether ``metadata`` came from the checkpoint's index (which matched `.metadata`).
    public let metadataFromIndex: Bool
    /// The checksum sidecar, when verifying.
    let sidecar: ChecksumSidecar?
    /// The sidecar of this save, even when not verifying: where payloads are.
    let hints: ChecksumSidecar?

    /// Reads and decodes `directory/.metadata` and the checksum sidecar (required when
    /// `options.verifyChecksums`, else only a hint of where payloads are), from their index when it
    /// matches them.
    public init(directory: String, engine: IOEngine, options: CheckpointOptions = CheckpointOptions()) async throws {
        let verify = options.verifyChecksums
        let files = try await Checkpointer.readCommitted(directory, engine: engine, optional: !verify)
        let metadata: DCPMetadata
        let sidecar: ChecksumSidecar?
        if let message = files.indexMessage {
            (metadata, sidecar) = try Checkpointer.decodeIndex(message, directory: directory, verify: verify)
            metadataFromIndex = true
        } else {
            (metadata, sidecar) = try await Checkpointer.decodeCommitted(files, directory: directory, verify: verify)
            metadataFromIndex = false
        }
        // Sizes and offsets the tools compute from it must not overflow (loads check the rest).
        if let problem = metadata.boundsProblem() {
            throw CheckpointError(.corrupt, "'\(directory)/\(Checkpointer.metadataFileName)': \(problem)")
        }
        self.directory = directory
        self.engine = engine
        self.options = options
        self.metadata = metadata
        self.hints = sidecar
        self.sidecar = verify ? sidecar : nil
    }

    /// Fills the tensor blocks of `state` (any layout) and loads its values, as
    /// ``Checkpointer/load(into:from:)`` does on one rank.
    public func load(into state: StateDict) async throws -> LoadReport {
        var execution = LoadExecution(
            directory: directory, metadata: metadata, sidecar: sidecar, engine: engine, options: options, hints: hints)
        return try await execution.run(state)
    }

    /// Where the payload of every saved tensor chunk is (records' heads read where the sidecar
    /// does not say).
    func locatePayloads() async throws -> LocatedPayloads {
        var execution = LoadExecution(
            directory: directory, metadata: metadata, sidecar: sidecar, engine: engine, options: options, hints: hints)
        return try await execution.locateAll()
    }

    /// Whether the checkpoint has a checksum sidecar written by ckpt.
    public var hasChecksums: Bool { sidecar != nil }
}
