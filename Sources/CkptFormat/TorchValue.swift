/// A value inside a torch.save pickle, with tensors resolved to ``TensorReference``s and the
/// standard Python encodings undone (`_codecs.encode` → bytes, `OrderedDict` → dict).
public indirect enum TorchValue: Sendable, Hashable {
    case none
    case bool(Bool)
    case int(Int64)
    /// Two's-complement little-endian bytes of an integer beyond 64 bits.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([TorchValue])
    case list([TorchValue])
    /// A dict (also `collections.OrderedDict`), in insertion order.
    case dict([Entry])
    case tensor(TensorReference)
    /// Anything else, kept as the raw (inert) pickle tree.
    case opaque(PickleValue)

    /// One dictionary pair.
    public struct Entry: Sendable, Hashable {
        /// Key.
        public var key: TorchValue
        /// Value.
        public var value: TorchValue
        /// Creates a pair.
        public init(_ key: TorchValue, _ value: TorchValue) {
            self.key = key
            self.value = value
        }
    }

    /// Value for `key` in a dict (string keys).
    public subscript(key: String) -> TorchValue? {
        guard case .dict(let entries) = self else { return nil }
        return entries.first { $0.key == .string(key) }?.value
    }

    /// Every tensor leaf in pickle traversal order, with its key path.
    public func tensors() -> [(path: [TorchValue], tensor: TensorReference)] {
        var out: [(path: [TorchValue], tensor: TensorReference)] = []
        func walk(_ v: TorchValue, _ path: [TorchValue]) {
            switch v {
            case .tensor(let t): out.append((path, t))
            case .tuple(let a), .list(let a):
                for (i, x) in a.enumerated() { walk(x, path + [.int(Int64(i))]) }
            case .dict(let e):
                for x in e {
                    walk(x.key, path)
                    walk(x.value, path + [x.key])
                }
            default: break
            }
        }
        walk(self, [])
        return out
    }
}

extension TorchValue {
    /// Interprets a decoded `data.pkl` tree.
    public init(resolving p: PickleValue) throws(FormatError) {
        self = try TorchPickle.resolve(p, depth: 0)
    }

    /// The pickle tree torch.save would write for this value (tensors as `_rebuild_tensor_v2/v3`).
    public func pickleValue() -> PickleValue {
        TorchPickle.lower(self)
    }
}

/// torch-specific pickle conventions.
enum TorchPickle {
    static let maxDepth = 500

    static func resolve(_ p: PickleValue, depth: Int) throws(FormatError) -> TorchValue {
        guard depth < maxDepth else { throw FormatError(.limitExceeded, "value nesting too deep", offset: 0) }
        switch p {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .bigInt(let b): return .bigInt(b)
        case .float(let d): return .float(d)
        case .string(let s): return .string(s)
        case .bytes(let b): return .bytes(b)
        case .tuple(let a): return .tuple(try resolveAll(a, depth))
        case .list(let a): return .list(try resolveAll(a, depth))
        case .dict(let e):
            var out: [TorchValue.Entry] = []
            out.reserveCapacity(e.count)
            for x in e { out.append(TorchValue.Entry(try resolve(x.key, depth: depth + 1), try resolve(x.value, depth: depth + 1))) }
            return .dict(out)
        case .object(let o):
            guard let (module, name) = o.callableName else { return .opaque(p) }
            switch (module, name) {
            case ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor_v3"):
                return .tensor(try tensor(o, v3: name.hasSuffix("v3")))
            case ("collections", "OrderedDict"):
                guard o.state == nil, o.listItems.isEmpty, case .tuple(let args) = o.args else { return .opaque(p) }
                var entries: [PickleDictEntry] = []
                if let first = args.first {
                    // OrderedDict(iterable_of_pairs)
                    guard args.count == 1, let pairs = first.sequenceElements else { return .opaque(p) }
                    for pair in pairs {
                        guard case .tuple(let kv) = pair, kv.count == 2 else { return .opaque(p) }
                        entries.append(PickleDictEntry(kv[0], kv[1]))
                    }
                }
                entries += o.dictItems
                return try resolve(.dict(entries), depth: depth + 1)
            case ("_codecs", "encode"):
                guard case .tuple(let args) = o.args, args.count == 2, case .string(let text) = args[0],
                    case .string(let enc) = args[1], enc == "latin1" || enc == "latin-1"
                else {
                    return .opaque(p)
                }
                var bytes: [UInt8] = []
                bytes.reserveCapacity(text.unicodeScalars.count)
                for u in text.unicodeScalars {
                    guard u.value < 256 else {
                        throw FormatError(.invalidValue, "_codecs.encode latin1 text holds U+\(String(u.value, radix: 16))", offset: 0)
                    }
                    bytes.append(UInt8(u.value))
                }
                return .bytes(bytes)
            default:
                return .opaque(p)
            }
        default:
            return .opaque(p)
        }
    }

    static func resolveAll(_ a: [PickleValue], _ depth: Int) throws(FormatError) -> [TorchValue] {
        var out: [TorchValue] = []
        out.reserveCapacity(a.count)
        for x in a { out.append(try resolve(x, depth: depth + 1)) }
        return out
    }

    static func ints(_ v: PickleValue, _ what: String) throws(FormatError) -> [Int] {
        guard case .tuple(let a) = v else {
            throw FormatError(.invalidRecord, "expected a tuple of ints for \(what)", offset: 0)
        }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for x in a {
            guard let i = x.intValue else { throw FormatError(.invalidRecord, "expected an int in \(what)", offset: 0) }
            out.append(i)
        }
        return out
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])` or
    /// `_rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])`.
    static func tensor(_ o: PickleObject, v3: Bool) throws(FormatError) -> TensorReference {
        guard o.construction == .reduce, case .tuple(let args) = o.args, args.count >= (v3 ? 7 : 6), args.count <= (v3 ? 8 : 7) else {
            throw FormatError(.invalidRecord, "tensor rebuild call has unexpected arguments", offset: 0)
        }
        guard case .persistentID(.tuple(let pid)) = args[0], pid.count == 5, pid[0] == .string("storage"),
            case .global(let sm, let sn) = pid[1], case .string(let key) = pid[2], case .string(let location) = pid[3],
            let numel = pid[4].intValue, numel >= 0
        else {
            throw FormatError(.invalidRecord, "tensor storage is not a ('storage', class, key, location, numel) persistent id", offset: 0)
        }
        let dtype: DType
        var elementCount = numel
        if v3 {
            guard sm == "torch.storage", sn == "UntypedStorage", case .global("torch", let dn) = args[6], let d = DType(torchName: dn) else {
                throw FormatError(.invalidRecord, "_rebuild_tensor_v3 needs UntypedStorage and a torch dtype", offset: 0)
            }
            dtype = d
            guard numel % d.itemSize == 0 else {
                throw FormatError(.invalidRecord, "untyped storage of \(numel) bytes is not a multiple of \(d.rawValue) size", offset: 0)
            }
            elementCount = numel / d.itemSize
        } else {
            guard sm == "torch", let d = DType(storageClassName: sn) else {
                throw FormatError(.invalidRecord, "unknown storage class \(sm).\(sn)", offset: 0)
            }
            dtype = d
        }
        guard let offset = args[1].intValue, offset >= 0 else {
            throw FormatError(.invalidRecord, "tensor storage offset is not a non-negative int", offset: 0)
        }
        let shape = try ints(args[2], "tensor shape")
        let strides = try ints(args[3], "tensor strides")
        guard case .bool(let rg) = args[4] else {
            throw FormatError(.invalidRecord, "tensor requires_grad is not a bool", offset: 0)
        }
        guard Checked.multiply(elementCount, dtype.itemSize) != nil else {
            throw FormatError(.invalidRecord, "storage size overflows", offset: 0)
        }
        let t = TensorReference(
            storageKey: key, dtype: dtype, storageOffset: offset, shape: shape, strides: strides,
            storageElementCount: elementCount, requiresGrad: rg, location: location)
        _ = try t.spannedByteRange()
        return t
    }

    static func lower(_ v: TorchValue) -> PickleValue {
        switch v {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .bigInt(let b): return .bigInt(b)
        case .float(let d): return .float(d)
        case .string(let s): return .string(s)
        case .bytes(let b): return .bytes(b)
        case .tuple(let a): return .tuple(a.map(lower))
        case .list(let a): return .list(a.map(lower))
        case .dict(let e): return .dict(e.map { PickleDictEntry(lower($0.key), lower($0.value)) })
        case .tensor(let t): return tensorPickle(t)
        case .opaque(let p): return p
        }
    }

    static func tensorPickle(_ t: TensorReference) -> PickleValue {
        let hooks = PickleValue.object(PickleObject(construction: .reduce, callable: .global(module: "collections", name: "OrderedDict"), args: .tuple([])))
        let shape = PickleValue.tuple(t.shape.map { .int(Int64($0)) })
        let strides = PickleValue.tuple(t.strides.map { .int(Int64($0)) })
        if let cls = t.dtype.storageClassName {
            let pid = PickleValue.persistentID(
                .tuple([.string("storage"), .global(module: "torch", name: cls), .string(t.storageKey), .string(t.location), .int(Int64(t.storageElementCount))]))
            return .object(
                PickleObject(
                    construction: .reduce, callable: .global(module: "torch._utils", name: "_rebuild_tensor_v2"),
                    args: .tuple([pid, .int(Int64(t.storageOffset)), shape, strides, .bool(t.requiresGrad), hooks])))
        }
        let pid = PickleValue.persistentID(
            .tuple([
                .string("storage"), .global(module: "torch.storage", name: "UntypedStorage"), .string(t.storageKey), .string(t.location),
                .int(Int64(t.storageElementCount * t.dtype.itemSize)),
            ]))
        return .object(
            PickleObject(
                construction: .reduce, callable: .global(module: "torch._utils", name: "_rebuild_tensor_v3"),
                args: .tuple([pid, .int(Int64(t.storageOffset)), shape, strides, .bool(t.requiresGrad), hooks, .global(module: "torch", name: t.dtype.torchName)])))
    }
}
