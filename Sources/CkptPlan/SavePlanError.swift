/// Errors of ``SavePlanner``: the ranks' plans cannot form a valid DCP checkpoint.
public enum SavePlanError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An item is malformed (bad shape, element size, chunk out of bounds, overflow).
    case invalidItem(SaveItemReference, fqn: String, reason: String)
    /// The same fqn has a different global shape, dtype or element size on two ranks.
    case inconsistentTensor(fqn: String, field: String, firstRank: Int, firstValue: String, rank: Int, value: String)
    /// The same fqn is a tensor on one rank and a non-tensor value on another.
    case kindMismatch(fqn: String, tensorRank: Int, bytesRank: Int)
    /// One rank lists the same item identity (fqn, offsets) twice.
    case duplicateItem(fqn: String, rank: Int, firstItem: Int, secondItem: Int)
    /// Two ranks hold chunks of a tensor with the same offsets but different sizes (DCP would
    /// treat them as one item and lose data).
    case conflictingChunkSizes(fqn: String, offsets: [Int], firstRank: Int, firstSizes: [Int], rank: Int, sizes: [Int])
    /// Two saved chunks of a tensor overlap.
    case overlappingChunks(fqn: String, first: ChunkBox, firstWriter: SaveItemReference, second: ChunkBox, secondWriter: SaveItemReference)
    /// With more than one rank, the chunk volumes do not add up to the tensor volume.
    case incompleteCoverage(fqn: String, chunkVolume: Int, tensorVolume: Int)
    /// Invalid options, e.g. fewer than one file per rank.
    case invalidOptions(String)

    public var description: String {
        switch self {
        case .invalidItem(let ref, let fqn, let reason):
            return "save item '\(fqn)' (\(ref)) is invalid: \(reason)"
        case .inconsistentTensor(let fqn, let field, let firstRank, let firstValue, let rank, let value):
            return "tensor '\(fqn)' has \(field) \(firstValue) on rank \(firstRank) but \(value) on rank \(rank)"
        case .kindMismatch(let fqn, let tensorRank, let bytesRank):
            return "'\(fqn)' is a tensor on rank \(tensorRank) but a non-tensor value on rank \(bytesRank)"
        case .duplicateItem(let fqn, let rank, let first, let second):
            return "rank \(rank) lists '\(fqn)' with the same chunk offsets twice (items \(first) and \(second))"
        case .conflictingChunkSizes(let fqn, let offsets, let firstRank, let firstSizes, let rank, let sizes):
            return "tensor '\(fqn)': chunk at offsets \(offsets) has sizes \(firstSizes) on rank \(firstRank) but \(sizes) on rank \(rank)"
        case .overlappingChunks(let fqn, let a, let aRef, let b, let bRef):
            return "tensor '\(fqn)': saved chunk \(a) (\(aRef)) overlaps saved chunk \(b) (\(bRef))"
        case .incompleteCoverage(let fqn, let chunkVolume, let tensorVolume):
            return "tensor '\(fqn)': saved chunks hold \(chunkVolume) elements but the tensor has \(tensorVolume)"
        case .invalidOptions(let reason):
            return "invalid save options: \(reason)"
        }
    }
}
