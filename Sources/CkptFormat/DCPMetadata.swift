/// Swift model of `torch.distributed.checkpoint.metadata.Metadata` (spec §2), decoded from and
/// encoded to the exact pickle object graph PyTorch writes to `.metadata`.
public struct DCPMetadata: Sendable, Equatable {
    /// fqn → tensor or bytes metadata, in insertion order.
    public var stateDictMetadata: OrderedMap<String, StorageMetadata>
    /// fqn → original state-dict path (nil when saved with `flatten_state_dict=False`).
    public var plannerData: OrderedMap<String, [PlannerPathElement]>?
    /// (fqn, chunk offsets) → where the record lives.
    public var storageData: OrderedMap<MetadataIndex, StorageInfo>
    /// Storage metadata, if any.
    public var storageMeta: StorageMeta?
    /// DCP version string (`"1.0.0"`), nil if absent.
    public var version: String?

    /// Creates metadata.
    public init(
        stateDictMetadata: OrderedMap<String, StorageMetadata> = OrderedMap(), plannerData: OrderedMap<String, [PlannerPathElement]>? = nil,
        storageData: OrderedMap<MetadataIndex, StorageInfo> = OrderedMap(), storageMeta: StorageMeta? = nil, version: String? = "1.0.0"
    ) {
        self.stateDictMetadata = stateDictMetadata
        self.plannerData = plannerData
        self.storageData = storageData
        self.storageMeta = storageMeta
        self.version = version
    }

    /// Where the chunk of `fqn` starting at `offsets` (nil for bytes items) is stored.
    public func storage(fqn: String, offsets: [Int]?) -> StorageInfo? {
        storageData[MetadataIndex(fqn: fqn, offset: offsets)]
    }
}

/// Metadata of one state-dict entry.
public enum StorageMetadata: Sendable, Equatable {
    /// A tensor (`TensorStorageMetadata`).
    case tensor(TensorStorageMetadata)
    /// A BYTE_IO value (`BytesStorageMetadata`).
    case bytes
}

/// `TensorStorageMetadata`: properties, global size and saved chunks.
public struct TensorStorageMetadata: Sendable, Equatable {
    /// dtype, layout and flags of the tensor.
    public var properties: TensorProperties
    /// Global shape (`torch.Size`).
    public var size: [Int]
    /// Saved chunks in plan order.
    public var chunks: [ChunkStorageMetadata]

    /// Creates tensor metadata.
    public init(properties: TensorProperties, size: [Int], chunks: [ChunkStorageMetadata]) {
        self.properties = properties
        self.size = size
        self.chunks = chunks
    }
}

/// `TensorProperties` (pickled through `__getstate__` as a 5- or 6-tuple).
public struct TensorProperties: Sendable, Equatable {
    /// Element type.
    public var dtype: DType
    /// Layout name passed to `torch.serialization._get_layout` (`"torch.strided"`).
    public var layout: String
    /// `requires_grad`.
    public var requiresGrad: Bool
    /// `_MEM_FORMAT_ENCODING` value: 0 contiguous, 1 channels_last, 2 preserve.
    public var memoryFormat: Int
    /// `pin_memory`.
    public var pinMemory: Bool
    /// Strides of the first saved chunk; nil when absent (5-tuple) or None.
    public var strides: [Int]?

    /// Creates properties (defaults as PyTorch writes them for CPU tensors).
    public init(
        dtype: DType, layout: String = "torch.strided", requiresGrad: Bool = false, memoryFormat: Int = 0, pinMemory: Bool = false,
        strides: [Int]? = nil
    ) {
        self.dtype = dtype
        self.layout = layout
        self.requiresGrad = requiresGrad
        self.memoryFormat = memoryFormat
        self.pinMemory = pinMemory
        self.strides = strides
    }
}

/// `ChunkStorageMetadata`: a saved chunk's global offsets and sizes.
public struct ChunkStorageMetadata: Sendable, Hashable {
    /// Global start index per dim.
    public var offsets: [Int]
    /// Extent per dim.
    public var sizes: [Int]
    /// Creates a chunk description.
    public init(offsets: [Int], sizes: [Int]) {
        self.offsets = offsets
        self.sizes = sizes
    }
}

/// `MetadataIndex`: equality and hashing use `(fqn, offset)` only, as in PyTorch.
public struct MetadataIndex: Sendable, Hashable {
    /// Flattened state-dict key.
    public var fqn: String
    /// Chunk offsets for tensors; nil for bytes items.
    public var offset: [Int]?
    /// Position hint in `chunks` (not part of equality).
    public var index: Int?

    /// Creates an index.
    public init(fqn: String, offset: [Int]? = nil, index: Int? = nil) {
        self.fqn = fqn
        self.offset = offset
        self.index = index
    }

    public static func == (a: MetadataIndex, b: MetadataIndex) -> Bool { a.fqn == b.fqn && a.offset == b.offset }
    public func hash(into h: inout Hasher) {
        h.combine(fqn)
        h.combine(offset)
    }
}

/// `_StorageInfo`: a record's file, offset and length.
public struct StorageInfo: Sendable, Equatable {
    /// Data file name relative to the checkpoint directory (`__r_i.distcp`).
    public var relativePath: String
    /// Byte offset of the record in the file.
    public var offset: Int
    /// Byte length of the record.
    public var length: Int
    /// Stream transform names; nil (omitted) by default.
    public var transformDescriptors: [String]?

    /// Creates storage info.
    public init(relativePath: String, offset: Int, length: Int, transformDescriptors: [String]? = nil) {
        self.relativePath = relativePath
        self.offset = offset
        self.length = length
        self.transformDescriptors = transformDescriptors
    }
}

/// One element of a `planner_data` path.
public enum PlannerPathElement: Sendable, Hashable {
    /// A dict key.
    case key(String)
    /// A list index.
    case index(Int)
}

/// `StorageMeta`.
public struct StorageMeta: Sendable, Equatable {
    /// `checkpoint_id`.
    public enum CheckpointID: Sendable, Equatable {
        /// A `pathlib` path: class name (`PosixPath`, `WindowsPath`, …) and its components.
        case path(className: String, components: [String])
        /// A plain string.
        case string(String)
    }
    /// `checkpoint_id` as given to the writer.
    public var checkpointID: CheckpointID?
    /// `save_id` (a uuid4 string).
    public var saveID: String?
    /// `load_id`.
    public var loadID: String?
    /// `modules`.
    public var modules: [String]

    /// Creates storage metadata.
    public init(checkpointID: CheckpointID? = nil, saveID: String? = nil, loadID: String? = nil, modules: [String] = []) {
        self.checkpointID = checkpointID
        self.saveID = saveID
        self.loadID = loadID
        self.modules = modules
    }
}
