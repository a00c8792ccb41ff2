/// One data file a rank writes, with its items in write order.
public struct PlannedFile: Hashable, Sendable {
    /// The writing rank.
    public var rank: Int
    /// The file's number within the rank (`i` in `__{rank}_{i}.distcp`).
    public var index: Int
    /// Indices into the rank's input item list, in the order the records are written: BYTE_IO
    /// items first, then tensors (as `FileSystemWriter` does).
    public var items: [Int]

    /// Creates a file entry.
    public init(rank: Int, index: Int, items: [Int]) {
        self.rank = rank
        self.index = index
        self.items = items
    }

    /// `__{rank}_{index}.distcp`.
    public var name: String { "__\(rank)_\(index).distcp" }
}
