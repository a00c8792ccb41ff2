import Foundation

extension BenchWorkload {
    /// The workload as plain JSON for other tools (`ckpt-bench --print-workload`, read by
    /// `scripts/bench-vs-torch`): shape, mix, total bytes, every tensor (`fqn`, `dtype` as the
    /// PyTorch name without `torch.`, `shape`) in state-dict order, and the values as JSON
    /// scalars. The sharding rule is stated so another implementation can reproduce the layout.
    public func manifestJSON(ranks: Int? = nil) throws -> Data {
        var object: [String: Any] = [
            "format": "ckpt-bench-workload-1",
            "modelDim": shape.modelDim,
            "layers": shape.layers,
            "vocab": shape.vocab,
            "tiedHead": shape.tiedHead,
            "mix": mix.rawValue,
            "parameterCount": shape.parameterCount,
            "totalBytes": totalBytes,
            "sharding": "torch.chunk(tensor, ranks, dim=0); empty trailing shards omitted",
            "tensors": tensors.map { ["fqn": $0.fqn, "dtype": $0.dtype.rawValue, "shape": $0.shape] as [String: Any] },
        ]
        var valueObject: [String: Any] = [:]
        for (key, value) in values {
            switch value {
            case .int(let v): valueObject[key] = v
            case .double(let v): valueObject[key] = v
            case .string(let v): valueObject[key] = v
            case .bool(let v): valueObject[key] = v
            }
        }
        object["values"] = valueObject
        if let ranks { object["ranks"] = ranks }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}
