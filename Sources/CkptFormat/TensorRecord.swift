/// A parsed torch.save record holding a single tensor (one DCP chunk).
public struct TensorRecord: Sendable, Equatable {
    /// Archive prefix (`archive` for DCP records).
    public var prefix: String
    /// The tensor view: dtype, shape, strides, storage offset.
    public var tensor: TensorReference
    /// Byte range of the whole storage (`data/<key>` payload) within the record.
    public var storageRange: Range<Int>
    /// Byte range within the record spanned by the tensor's elements (first to last element). For a
    /// contiguous tensor this is exactly its bytes.
    public var tensorRange: Range<Int>
}

/// Result of locating a tensor from the first bytes of a record.
public enum TensorRecordLocation: Sendable, Equatable {
    /// The header sufficed.
    case located(TensorRecord)
    /// More leading bytes are needed: read at least `headBytes` bytes from the record start.
    case needMoreHead(headBytes: Int)
}
