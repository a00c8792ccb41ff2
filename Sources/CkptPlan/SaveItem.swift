/// One item of a rank's save plan, in the rank's state-dict order.
public enum SaveItem: Hashable, Sendable {
    /// A tensor chunk. Identity across ranks: `(fqn, chunk offsets)`.
    case tensor(TensorWriteItem)
    /// A non-tensor value pickled as a BYTE_IO record. Identity across ranks: `fqn`.
    ///
    /// `estimatedSize` is used only by ``SavePlanOptions/DedupPolicy/balancedByBytes``; DCP counts
    /// every BYTE_IO item as 1 byte.
    case bytes(fqn: String, estimatedSize: Int = 1)

    /// The fully qualified name of the item.
    public var fqn: String {
        switch self {
        case .tensor(let item): return item.fqn
        case .bytes(let fqn, _): return fqn
        }
    }

    /// Whether this is a BYTE_IO item.
    public var isBytes: Bool {
        if case .bytes = self { return true }
        return false
    }
}
