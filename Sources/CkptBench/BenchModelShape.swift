/// Hyper-parameters of the GPT-like model behind the benchmark workload.
public struct BenchModelShape: Sendable, Hashable, Codable {
    /// Hidden size `d`.
    public var modelDim: Int
    /// Number of transformer blocks.
    public var layers: Int
    /// Vocabulary size (rows of the token embedding).
    public var vocab: Int
    /// Whether the LM head shares the token embedding (no separate `lm_head.weight`).
    public var tiedHead: Bool

    /// Creates a model shape.
    public init(modelDim: Int, layers: Int, vocab: Int, tiedHead: Bool = true) {
        self.modelDim = modelDim
        self.layers = layers
        self.vocab = vocab
        self.tiedHead = tiedHead
    }

    /// Parameters of one transformer block: qkv `3d*d + 3d`, out `d*d + d`, fc1 `4d*d + 4d`,
    /// fc2 `d*4d + d`, two layer norms `4d`.
    public var parametersPerLayer: Int {
        let d = modelDim
        return 12 * d * d + 13 * d
    }

    /// Total number of model parameters.
    public var parameterCount: Int {
        let embeddings = vocab * modelDim * (tiedHead ? 1 : 2)
        return embeddings + layers * parametersPerLayer + 2 * modelDim
    }

    /// The model parameters in registration order: name (without the `model.` prefix) and shape.
    public var parameters: [(name: String, shape: [Int])] {
        let d = modelDim
        var result: [(name: String, shape: [Int])] = []
        result.reserveCapacity(2 + layers * 12 + 3)
        result.append(("tok_embeddings.weight", [vocab, d]))
        for layer in 0..<layers {
            let p = "layers.\(layer)."
            result.append((p + "ln1.weight", [d]))
            result.append((p + "ln1.bias", [d]))
            result.append((p + "attn.qkv.weight", [3 * d, d]))
            result.append((p + "attn.qkv.bias", [3 * d]))
            result.append((p + "attn.out.weight", [d, d]))
            result.append((p + "attn.out.bias", [d]))
            result.append((p + "ln2.weight", [d]))
            result.append((p + "ln2.bias", [d]))
            result.append((p + "mlp.fc1.weight", [4 * d, d]))
            result.append((p + "mlp.fc1.bias", [4 * d]))
            result.append((p + "mlp.fc2.weight", [d, 4 * d]))
            result.append((p + "mlp.fc2.bias", [d]))
        }
        result.append(("norm.weight", [d]))
        result.append(("norm.bias", [d]))
        if !tiedHead {
            result.append(("lm_head.weight", [vocab, d]))
        }
        return result
    }
}
