public import CkptFormat
public import CkptPlan

/// One block of a tensor held by this rank: its place in the global tensor and its bytes,
/// C-contiguous (row-major) over `sizes`, at `byteOffset` in `buffer`.
public struct TensorChunk: Sendable {
    /// Start index of the block in each dimension of the global tensor.
    public var offsets: [Int]
    /// Extent of the block in each dimension.
    public var sizes: [Int]
    /// The memory holding the block.
    public var buffer: TensorBuffer
    /// Where the block's bytes start in `buffer`.
    public var byteOffset: Int

    public init(offsets: [Int], sizes: [Int], buffer: TensorBuffer, byteOffset: Int = 0) {
        self.offsets = offsets
        self.sizes = sizes
        self.buffer = buffer
        self.byteOffset = byteOffset
    }

    /// Number of elements of the block (1 for a 0-d tensor).
    public var elementCount: Int { sizes.reduce(1, *) }
}

/// A tensor of the state dict: its global dtype and shape and the blocks this rank holds. A plain
/// or replicated tensor is one block covering the whole tensor; a sharded tensor (FSDP row shards,
/// column shards, 2-D meshes, uneven or empty shards) lists this rank's blocks.
public struct TensorEntry: Sendable {
    public var dtype: DType
    public var globalShape: [Int]
    public var chunks: [TensorChunk]

    public init(dtype: DType, globalShape: [Int], chunks: [TensorChunk]) {
        self.dtype = dtype
        self.globalShape = globalShape
        self.chunks = chunks
    }

    /// A whole (plain or replicated) tensor in one buffer.
    public static func whole(dtype: DType, shape: [Int], buffer: TensorBuffer, byteOffset: Int = 0) -> TensorEntry {
        TensorEntry(
            dtype: dtype, globalShape: shape,
            chunks: [TensorChunk(offsets: Array(repeating: 0, count: shape.count), sizes: shape, buffer: buffer, byteOffset: byteOffset)])
    }
}

/// A leaf of the state dict.
public enum StateValue: Sendable {
    /// A tensor (or this rank's blocks of it).
    case tensor(TensorEntry)
    /// Any non-tensor value (DCP's BYTE_IO items): numbers, strings, lists, dicts...
    case value(TorchValue)

    var isTensor: Bool {
        if case .tensor = self { return true }
        return false
    }
}

/// A rank's training state, flattened as DCP flattens it: an ordered list of dotted fully
/// qualified names (`model.layers.0.attn.weight`), each with the path it came from (for
/// `planner_data`, so that PyTorch rebuilds the nesting) and its value.
public struct StateDict: Sendable {
    /// One entry.
    public struct Entry: Sendable {
        public var fqn: String
        /// Path elements (dict keys and list indices) the fqn was flattened from.
        public var path: [PathElement]
        public var value: StateValue
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]

    /// An empty state dict.
    public init() {}

    /// Flattens a nested state (dicts, lists, leaves) exactly as `dcp.save` does.
    public init(nested tree: StateTree<StateValue>) throws {
        for entry in try tree.flatten(isTensor: { $0.isTensor }) {
            guard case .leaf(let value) = entry.value else {
                // An empty list or terminal list stays a value; represent it as a TorchValue.
                set(entry.fqn, path: entry.path, .value(try Self.torchValue(entry.value)))
                continue
            }
            set(entry.fqn, path: entry.path, value)
        }
    }

    /// Adds or replaces the entry `fqn`. `path` defaults to the single key `fqn`.
    public mutating func set(_ fqn: String, path: [PathElement]? = nil, _ value: StateValue) {
        let entry = Entry(fqn: fqn, path: path ?? [.key(fqn)], value: value)
        if let existing = index[fqn] {
            entries[existing] = entry
        } else {
            index[fqn] = entries.count
            entries.append(entry)
        }
    }

    /// The value stored under `fqn`.
    public subscript(fqn: String) -> StateValue? {
        index[fqn].map { entries[$0].value }
    }

    /// Number of entries.
    public var count: Int { entries.count }

    /// Bytes of tensor data this rank holds.
    public var localTensorBytes: Int {
        entries.reduce(0) { total, entry in
            guard case .tensor(let t) = entry.value else { return total }
            return total + t.chunks.reduce(0) { $0 + $1.elementCount * t.dtype.itemSize }
        }
    }

    private static func torchValue(_ tree: StateTree<StateValue>) throws -> TorchValue {
        switch tree {
        case .leaf(.value(let v)): return v
        case .leaf(.tensor): throw CheckpointError(.invalidArgument, "a tensor inside a list that DCP keeps as one value")
        case .list(let items): return .list(try items.map(torchValue))
        case .dict(let items): return .dict(try items.map { TorchValue.Entry(.string($0.key), try torchValue($0.value)) })
        }
    }
}
