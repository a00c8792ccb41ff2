/// How ``Resharder`` lays out the rewritten checkpoint.
public enum ReshardLayout: Sendable, Equatable {
    /// As if saved by `ranks` ranks, every tensor split evenly into rows along dim 0 as
    /// `torch.chunk` does (`ceil(rows / ranks)` rows per rank; trailing ranks may get none).
    /// 0-d tensors and tensors with no rows are written whole by rank 0.
    case rowSplit(ranks: Int)
    /// The chunk layout of the checkpoint in `template`: each tensor's chunks and the rank that
    /// wrote each (from its `__{rank}_{i}.distcp` file). Tensors the template lacks are row-split.
    case like(template: String)
}
