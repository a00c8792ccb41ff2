public import CkptFormat

/// Short Python-like text of a checkpoint value, for listings.
public enum ValueRepr {
    /// `value` as Python would print it, cut to about `limit` characters.
    public static func short(_ value: TorchValue, limit: Int = 60) -> String {
        var out = ""
        render(value, into: &out, limit: limit)
        if out.count > limit { out = String(out.prefix(max(limit - 1, 1))) + "…" }
        return out
    }

    /// Python type name of `value`.
    public static func typeName(_ value: TorchValue) -> String {
        switch value {
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .tensor: return "Tensor"
        case .opaque: return "object"
        }
    }

    private static func render(_ value: TorchValue, into out: inout String, limit: Int) {
        guard out.count <= limit else { return }
        switch value {
        case .none: out += "None"
        case .bool(let b): out += b ? "True" : "False"
        case .int(let i): out += String(i)
        case .bigInt(let bytes): out += "<int of \(bytes.count) bytes>"
        case .float(let d):
            if d.isNaN { out += "nan" } else if d.isInfinite { out += d > 0 ? "inf" : "-inf" } else {
                out += d == d.rounded() && abs(d) < 1e16 ? String(format: "%.1f", d) : "\(d)"
            }
        case .string(let s):
            out += "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
                .replacingOccurrences(of: "\n", with: "\\n") + "'"
        case .bytes(let b): out += "b<\(b.count) bytes>"
        case .tuple(let items):
            out += "("
            sequence(items, into: &out, limit: limit)
            if items.count == 1 { out += "," }
            out += ")"
        case .list(let items):
            out += "["
            sequence(items, into: &out, limit: limit)
            out += "]"
        case .dict(let entries):
            out += "{"
            for (i, e) in entries.enumerated() {
                if i > 0 { out += ", " }
                if out.count > limit { out += "..."; break }
                render(e.key, into: &out, limit: limit)
                out += ": "
                render(e.value, into: &out, limit: limit)
            }
            out += "}"
        case .tensor(let t): out += "tensor(\(t.dtype.torchName), shape=\(t.shape))"
        case .opaque: out += "<object>"
        }
    }

    private static func sequence(_ items: [TorchValue], into out: inout String, limit: Int) {
        for (i, item) in items.enumerated() {
            if i > 0 { out += ", " }
            if out.count > limit { out += "..."; break }
            render(item, into: &out, limit: limit)
        }
    }
}
