/// Byte layout of one torch.save tensor record for zero-copy writing: write ``prefix``, then the
/// tensor's ``payloadLength`` bytes straight from memory, then ``suffix``.
public struct RecordLayout: Sendable, Equatable {
    /// Everything before the tensor bytes (zip entries up to and including `data/0`'s local header).
    public var prefix: [UInt8]
    /// Offset of the tensor bytes in the record (== `prefix.count`), aligned to the requested alignment.
    public var payloadOffset: Int
    /// Tensor bytes (numel × itemsize).
    public var payloadLength: Int
    /// Everything after the tensor bytes (descriptor, trailing entries, central directory, EOCD).
    public var suffix: [UInt8]
    /// Total record length.
    public var recordLength: Int
}
