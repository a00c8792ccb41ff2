/// How the tensors of a workload are split over ranks: per rank, the chunks it holds.
public struct BenchShardLayout: Sendable, Hashable, Codable {
    /// The dimension that is split.
    public enum Axis: String, Sendable, Hashable, Codable {
        /// FSDP-style: every tensor is split along dimension 0 like `torch.chunk(t, R, dim=0)`.
        case rows
        /// 2-D tensors are split along dimension 1 (tensor-parallel style); tensors of other ranks
        /// along dimension 0.
        case columns
    }

    /// Number of ranks.
    public let ranks: Int
    /// The split dimension.
    public let axis: Axis
    /// `chunksByRank[r]` lists rank `r`'s non-empty chunks in state-dict order.
    public let chunksByRank: [[BenchChunk]]

    /// Creates a layout from its chunks.
    public init(ranks: Int, axis: Axis, chunksByRank: [[BenchChunk]]) {
        self.ranks = ranks
        self.axis = axis
        self.chunksByRank = chunksByRank
    }

    /// The chunks held by `rank` (empty for an out-of-range rank).
    public func chunks(rank: Int) -> [BenchChunk] {
        chunksByRank.indices.contains(rank) ? chunksByRank[rank] : []
    }

    /// Bytes held by `rank` (0 for an out-of-range rank).
    public func bytes(rank: Int) -> Int {
        chunks(rank: rank).reduce(0) { $0 + $1.byteCount }
    }

    /// Bytes held by each rank.
    public var bytesPerRank: [Int] {
        chunksByRank.map { $0.reduce(0) { $0 + $1.byteCount } }
    }

    /// Bytes held by all ranks together (equals the workload's tensor bytes).
    public var totalBytes: Int { bytesPerRank.reduce(0, +) }
}
