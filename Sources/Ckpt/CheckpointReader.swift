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
    let sidecar: ChecksumSidecar?

    /// Reads and decodes `directory/.metadata` (and the checksum sidecar when
    /// `options.verifyChecksums`).
    public init(directory: String, engine: IOEngine, options: CheckpointOptions = CheckpointOptions()) async throws {
        let parts = await Checkpointer.readCommitted(directory, engine: engine, sidecar: options.verifyChecksums)
        if !parts[0].isEmpty { throw Wire.decodeError(parts[0]) }
        let (metadata, sidecar) = try await Checkpointer.decodeCommitted(
            directory: directory, metadata: parts[1], sidecar: parts[2], verify: options.verifyChecksums)
        self.directory = directory
        self.engine = engine
        self.options = options
        self.metadata = metadata
        self.sidecar = sidecar
    }

    /// Fills the tensor blocks of `state` (any layout) and loads its values, as
    /// ``Checkpointer/load(into:from:)`` does on one rank.
    public func load(into state: StateDict) async throws -> LoadReport {
        var execution = LoadExecution(directory: directory, metadata: metadata, sidecar: sidecar, engine: engine, options: options)
        return try await execution.run(state)
    }

    /// Whether the checkpoint has a checksum sidecar written by ckpt.
    public var hasChecksums: Bool { sidecar != nil }
}
