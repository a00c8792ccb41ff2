/// Every tensor element type found in PyTorch checkpoints, named as in `torch` (`torch.float32` …).
public enum DType: String, Sendable, CaseIterable, Hashable {
    case float64, float32, float16, bfloat16
    case float8_e4m3fn, float8_e5m2, float8_e4m3fnuz, float8_e5m2fnuz, float8_e8m0fnu
    case int8, int16, int32, int64
    case uint8, uint16, uint32, uint64
    case bool
    case complex32, complex64, complex128

    /// Creates a dtype from its torch attribute name (`"float32"`, `"bfloat16"`, …).
    public init?(torchName: String) {
        self.init(rawValue: torchName)
    }

    /// The torch attribute name (`torch.<name>`).
    public var torchName: String { rawValue }

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .float64, .int64, .uint64, .complex64: return 8
        case .float32, .int32, .uint32, .complex32: return 4
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .float8_e4m3fn, .float8_e5m2, .float8_e4m3fnuz, .float8_e5m2fnuz, .float8_e8m0fnu,
            .int8, .uint8, .bool:
            return 1
        case .complex128: return 16
        }
    }

    /// Legacy typed storage class in module `torch` used by `_rebuild_tensor_v2`, or nil for
    /// dtypes that torch.save writes through `_rebuild_tensor_v3` + `torch.storage.UntypedStorage`.
    public var storageClassName: String? {
        switch self {
        case .float64: return "DoubleStorage"
        case .float32: return "FloatStorage"
        case .float16: return "HalfStorage"
        case .bfloat16: return "BFloat16Storage"
        case .int64: return "LongStorage"
        case .int32: return "IntStorage"
        case .int16: return "ShortStorage"
        case .int8: return "CharStorage"
        case .uint8: return "ByteStorage"
        case .bool: return "BoolStorage"
        case .complex128: return "ComplexDoubleStorage"
        case .complex64: return "ComplexFloatStorage"
        default: return nil
        }
    }

    /// Finds the dtype whose legacy storage class is `name` (e.g. `"FloatStorage"`).
    public init?(storageClassName name: String) {
        guard let found = DType.allCases.first(where: { $0.storageClassName == name }) else { return nil }
        self = found
    }

    /// The safetensors dtype string, or nil when safetensors has no such type.
    public var safetensorsName: String? {
        switch self {
        case .bool: return "BOOL"
        case .uint8: return "U8"
        case .int8: return "I8"
        case .uint16: return "U16"
        case .int16: return "I16"
        case .uint32: return "U32"
        case .int32: return "I32"
        case .uint64: return "U64"
        case .int64: return "I64"
        case .float16: return "F16"
        case .bfloat16: return "BF16"
        case .float32: return "F32"
        case .float64: return "F64"
        case .float8_e4m3fn: return "F8_E4M3"
        case .float8_e5m2: return "F8_E5M2"
        case .float8_e8m0fnu: return "F8_E8M0"
        case .complex64: return "C64"
        case .float8_e4m3fnuz, .float8_e5m2fnuz, .complex32, .complex128: return nil
        }
    }

    /// Finds the dtype for a safetensors dtype string (e.g. `"BF16"`).
    public init?(safetensorsName name: String) {
        guard let found = DType.allCases.first(where: { $0.safetensorsName == name }) else { return nil }
        self = found
    }
}
