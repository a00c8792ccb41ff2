/// A decoded pickle value: a plain tree, never executed.
///
/// Containers keep their order; dictionaries are ordered lists of pairs (pickle dicts may repeat or
/// use unhashable keys). Calls recorded in the stream (`REDUCE`, `NEWOBJ`, `BUILD`) appear as
/// ``PickleObject`` nodes; the caller decides what they mean.
public enum PickleValue: Sendable, Hashable {
    case none
    case bool(Bool)
    /// An integer that fits in 64 bits.
    case int(Int64)
    /// An integer outside the 64-bit range: minimal two's-complement little-endian bytes (as `LONG1`).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case byteArray([UInt8])
    case tuple([PickleValue])
    case list([PickleValue])
    case dict([PickleDictEntry])
    case set([PickleValue])
    case frozenSet([PickleValue])
    /// A reference to `module.name` (only names on the allow-list are ever produced by the reader).
    indirect case global(module: String, name: String)
    /// The result of `REDUCE` / `NEWOBJ`, optionally followed by `BUILD`.
    indirect case object(PickleObject)
    /// A persistent id (`BINPERSID`), e.g. torch's storage tuple.
    indirect case persistentID(PickleValue)

    /// The integer value when it fits in `Int`.
    public var intValue: Int? {
        if case .int(let v) = self { return Int(exactly: v) }
        return nil
    }

    /// The string value, if this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Elements of a tuple or list.
    public var sequenceElements: [PickleValue]? {
        switch self {
        case .tuple(let a), .list(let a): return a
        default: return nil
        }
    }

    /// Creates an integer value, normalising to ``int(_:)`` when possible.
    public static func integer(_ v: Int) -> PickleValue { .int(Int64(v)) }
}

/// One key/value pair of a pickled dict, in stream order.
public struct PickleDictEntry: Sendable, Hashable {
    /// Key.
    public var key: PickleValue
    /// Value.
    public var value: PickleValue
    /// Creates a pair.
    public init(_ key: PickleValue, _ value: PickleValue) {
        self.key = key
        self.value = value
    }
}

/// An object built by the pickle stream: `callable(*args)` (REDUCE) or `cls.__new__(cls, *args)`
/// (NEWOBJ), with the state passed to `BUILD` if any.
public struct PickleObject: Sendable, Hashable {
    /// How the object was constructed.
    public enum Construction: Sendable, Hashable {
        case reduce
        case newObj
    }
    /// REDUCE or NEWOBJ.
    public var construction: Construction
    /// The callable or class (normally ``PickleValue/global(module:name:)``).
    public var callable: PickleValue
    /// The argument tuple.
    public var args: PickleValue
    /// The `BUILD` state, if the stream applied one.
    public var state: PickleValue?
    /// Items appended to the object with `APPEND(S)` (e.g. list subclasses), in order.
    public var listItems: [PickleValue]
    /// Items set on the object with `SETITEM(S)` (e.g. `collections.OrderedDict`), in order.
    public var dictItems: [PickleDictEntry]

    /// Creates an object node.
    public init(
        construction: Construction, callable: PickleValue, args: PickleValue, state: PickleValue? = nil,
        listItems: [PickleValue] = [], dictItems: [PickleDictEntry] = []
    ) {
        self.construction = construction
        self.callable = callable
        self.args = args
        self.state = state
        self.listItems = listItems
        self.dictItems = dictItems
    }

    /// `(module, name)` when the callable is a global.
    public var callableName: (module: String, name: String)? {
        if case .global(let m, let n) = callable { return (m, n) }
        return nil
    }
}

extension PickleValue {
    /// Convenience for `.global` of a `"module.name"`-style pair.
    public static func reduce(_ module: String, _ name: String, _ args: [PickleValue]) -> PickleValue {
        .object(PickleObject(construction: .reduce, callable: .global(module: module, name: name), args: .tuple(args)))
    }

    /// Minimal two's-complement little-endian encoding of `v` (empty for zero), as in `LONG1`.
    static func twosComplementBytes(_ v: Int64) -> [UInt8] {
        if v == 0 { return [] }
        var bytes: [UInt8] = []
        var x = v
        for _ in 0..<8 {
            bytes.append(UInt8(truncatingIfNeeded: x))
            x >>= 8
        }
        // Trim redundant sign bytes.
        while bytes.count > 1 {
            let last = bytes[bytes.count - 1]
            let prevHigh = bytes[bytes.count - 2] & 0x80
            if (last == 0x00 && prevHigh == 0) || (last == 0xFF && prevHigh != 0) {
                bytes.removeLast()
            } else {
                break
            }
        }
        return bytes
    }

    /// Integer value of two's-complement bytes if it fits `Int64`; normalised `.int` or `.bigInt`.
    static func fromTwosComplement(_ bytes: [UInt8]) -> PickleValue {
        if bytes.isEmpty { return .int(0) }
        var trimmed = bytes
        while trimmed.count > 1 {
            let last = trimmed[trimmed.count - 1]
            let prevHigh = trimmed[trimmed.count - 2] & 0x80
            if (last == 0x00 && prevHigh == 0) || (last == 0xFF && prevHigh != 0) {
                trimmed.removeLast()
            } else {
                break
            }
        }
        if trimmed.count <= 8 {
            var v: UInt64 = 0
            for (i, b) in trimmed.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            let negative = (trimmed[trimmed.count - 1] & 0x80) != 0
            if negative && trimmed.count < 8 {
                v |= ~UInt64(0) << (8 * UInt64(trimmed.count))
            }
            return .int(Int64(bitPattern: v))
        }
        return .bigInt(trimmed)
    }
}
