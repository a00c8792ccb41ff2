/// A tensor inside a torch.save pickle: which storage it views and how.
public struct TensorReference: Sendable, Hashable {
    /// Storage key: the archive record is `data/<storageKey>`.
    public var storageKey: String
    /// Element type.
    public var dtype: DType
    /// Offset of the first element in the storage, in elements.
    public var storageOffset: Int
    /// Shape (empty for 0-d).
    public var shape: [Int]
    /// Strides in elements.
    public var strides: [Int]
    /// Storage size in elements of `dtype` (the `numel` field of the persistent id, converted from
    /// bytes for untyped storages).
    public var storageElementCount: Int
    /// `requires_grad` flag.
    public var requiresGrad: Bool
    /// Storage location string (`"cpu"`).
    public var location: String

    /// Creates a reference.
    public init(
        storageKey: String, dtype: DType, storageOffset: Int = 0, shape: [Int], strides: [Int]? = nil,
        storageElementCount: Int? = nil, requiresGrad: Bool = false, location: String = "cpu"
    ) {
        self.storageKey = storageKey
        self.dtype = dtype
        self.storageOffset = storageOffset
        self.shape = shape
        self.strides = strides ?? contiguousStrides(shape)
        self.storageElementCount = storageElementCount ?? (Checked.product(shape) ?? 0)
        self.requiresGrad = requiresGrad
        self.location = location
    }

    /// A contiguous tensor of `shape` owning a whole storage (key assigned by the writer).
    public static func contiguous(dtype: DType, shape: [Int], storageKey: String = "") -> TensorReference {
        TensorReference(storageKey: storageKey, dtype: dtype, shape: shape)
    }

    /// Number of elements (product of shape; 1 for 0-d).
    public var elementCount: Int { Checked.product(shape) ?? 0 }

    /// Bytes of the whole storage.
    public var storageByteCount: Int { storageElementCount * dtype.itemSize }

    /// Whether strides are the C-contiguous strides of `shape` (size-1 dims ignored).
    public var isContiguous: Bool {
        let c = contiguousStrides(shape)
        for i in shape.indices where shape[i] != 1 && strides[i] != c[i] { return false }
        return true
    }

    /// Byte range of the storage spanned by the tensor (`storageOffset` … last element), relative
    /// to the storage start; empty range at the offset for empty tensors. Throws when the view
    /// leaves the storage or the strides are negative.
    public func spannedByteRange() throws(FormatError) -> Range<Int> {
        guard shape.count == strides.count else {
            throw FormatError(.invalidRecord, "tensor has \(shape.count) dims but \(strides.count) strides", offset: 0)
        }
        guard storageOffset >= 0, storageElementCount >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw FormatError(.invalidRecord, "negative shape, stride, offset or storage size", offset: 0)
        }
        let item = dtype.itemSize
        guard Checked.product(shape) != nil else {
            throw FormatError(.invalidRecord, "tensor shape \(shape) overflows", offset: 0)
        }
        if shape.contains(0) {
            guard storageOffset <= storageElementCount else {
                throw FormatError(.invalidRecord, "storage offset \(storageOffset) past storage of \(storageElementCount) elements", offset: 0)
            }
            return (storageOffset * item)..<(storageOffset * item)
        }
        var last = storageOffset
        for (d, s) in zip(shape, strides) {
            guard let span = Checked.multiply(d - 1, s), let next = Checked.add(last, span) else {
                throw FormatError(.invalidRecord, "tensor view extent overflows", offset: 0)
            }
            last = next
        }
        guard last < storageElementCount, let end = Checked.multiply(last + 1, item) else {
            throw FormatError(
                .invalidRecord, "tensor view (offset \(storageOffset), shape \(shape), strides \(strides)) reaches element \(last) of a \(storageElementCount)-element storage",
                offset: 0)
        }
        return (storageOffset * item)..<end
    }
}
