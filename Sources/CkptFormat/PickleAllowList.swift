/// The globals a pickle may reference. The reader never calls anything; the allow-list only decides
/// which `module.name` references are accepted as inert ``PickleValue/global(module:name:)`` nodes.
public struct PickleAllowList: Sendable, Equatable {
    /// Allowed names as `"module name"` pairs (a single space separates module and attribute).
    public var names: Set<String>

    /// Creates an allow-list from `(module, name)` pairs.
    public init(_ pairs: [(String, String)]) {
        names = Set(pairs.map { "\($0.0) \($0.1)" })
    }

    /// Whether `module.name` is allowed.
    public func allows(module: String, name: String) -> Bool {
        names.contains("\(module) \(name)")
    }

    /// Returns the union with more pairs.
    public func adding(_ pairs: [(String, String)]) -> PickleAllowList {
        var copy = self
        for p in pairs { copy.names.insert("\(p.0) \(p.1)") }
        return copy
    }

    /// Everything DCP `.metadata`, torch.save tensor records, consolidated checkpoints and BYTE_IO
    /// values of plain Python data need (spec §2.2, §3.4, §4).
    public static let checkpoint: PickleAllowList = {
        let md = "torch.distributed.checkpoint.metadata"
        var pairs: [(String, String)] = [
            (md, "Metadata"), (md, "TensorStorageMetadata"), (md, "TensorProperties"),
            (md, "ChunkStorageMetadata"), (md, "BytesStorageMetadata"), (md, "MetadataIndex"),
            (md, "StorageMeta"), (md, "_MEM_FORMAT_ENCODING"),
            ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
            ("torch.serialization", "_get_layout"),
            ("torch", "Size"),
            ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor_v3"),
            ("torch.storage", "UntypedStorage"),
            ("collections", "OrderedDict"),
            ("pathlib", "PosixPath"), ("pathlib", "PurePosixPath"),
            ("pathlib", "WindowsPath"), ("pathlib", "PureWindowsPath"),
            ("_codecs", "encode"),
            ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"),
            ("__builtin__", "set"), ("__builtin__", "frozenset"), ("__builtin__", "bytearray"),
        ]
        for d in DType.allCases {
            pairs.append(("torch", d.torchName))
            if let s = d.storageClassName { pairs.append(("torch", s)) }
        }
        return PickleAllowList(pairs)
    }()
}
