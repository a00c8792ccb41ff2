import Foundation

/// The default benchmark workload: a deterministic GPT-like training state (model weights,
/// optimizer moments, and a few non-tensor values), sized to approach a requested byte count.
///
/// The tensors are only described here; their content comes from ``BenchContent``, which can
/// produce any chunk of any tensor independently.
public struct BenchWorkload: Sendable, Hashable, Codable {
    /// The default total size of the tensors: 1 GiB. With ~1.5 GB/s of disk, one save and load
    /// of every scenario takes about a minute on a 2-core machine.
    public static let defaultSizeBytes = 1 << 30

    /// The model that generated the tensors.
    public let shape: BenchModelShape
    /// Precision mix of the state.
    public let mix: BenchStateMix
    /// All tensors in state-dict order: every `model.*` tensor first, then the optimizer state.
    public let tensors: [BenchTensor]
    /// Non-tensor values of the state (step, learning rate, ...), keyed by fully qualified name.
    public let values: [String: BenchValue]

    /// Builds the workload of a given model shape and precision mix.
    public init(shape: BenchModelShape, mix: BenchStateMix = .mixedPrecisionAdam, step: Int = 1000) {
        self.shape = shape
        self.mix = mix
        let parameters = shape.parameters
        var tensors: [BenchTensor] = []
        tensors.reserveCapacity(parameters.count * (1 + mix.optimizerSuffixes.count))
        for parameter in parameters {
            tensors.append(BenchTensor(fqn: "model." + parameter.name, dtype: mix.modelDType, shape: parameter.shape))
        }
        for suffix in mix.optimizerSuffixes {
            for parameter in parameters {
                tensors.append(
                    BenchTensor(
                        fqn: "optim.state.\(parameter.name).\(suffix)", dtype: .float32, shape: parameter.shape))
            }
        }
        self.tensors = tensors
        var values: [String: BenchValue] = [
            "step": .int(step),
            "epoch": .int(step / 500),
            "rng_seed": .int(1234),
            "scheduler.name": .string("cosine"),
            "scheduler.warmup_steps": .int(200),
        ]
        if !mix.optimizerSuffixes.isEmpty {
            values["optim.param_groups.0.lr"] = .double(3.0e-4)
            values["optim.param_groups.0.betas.0"] = .double(0.9)
            values["optim.param_groups.0.betas.1"] = .double(0.95)
            values["optim.param_groups.0.eps"] = .double(1.0e-8)
            values["optim.param_groups.0.weight_decay"] = .double(0.1)
            values["optim.param_groups.0.amsgrad"] = .bool(false)
        }
        self.values = values
    }

    /// Builds the workload whose tensor bytes come closest to `targetBytes`.
    ///
    /// The shape is chosen deterministically by a small search: hidden sizes `d` that are multiples
    /// of 64 (8, 16, 32 for tiny targets) and 1...256 layers, with the vocabulary (a multiple of 8)
    /// absorbing the remainder. Among shapes within 0.5% of the target, the one closest to GPT
    /// proportions wins: width-to-depth ratio 64 (GPT-2 small: 768/12) and a vocabulary of 50304,
    /// compared on a log scale, the ratio weighted twice. Targets from about 1 MiB up land within a fraction of a percent.
    public static func sized(
        targetBytes: Int,
        mix: BenchStateMix = .mixedPrecisionAdam,
        tiedHead: Bool = true
    ) throws(BenchWorkloadError) -> BenchWorkload {
        guard targetBytes > 0 else {
            throw .invalidSize(bytes: targetBytes, reason: "the size must be positive")
        }
        guard targetBytes <= (1 << 50) else {
            throw .invalidSize(bytes: targetBytes, reason: "the size must not exceed 1 PiB")
        }
        let bytesPerParameter = mix.bytesPerParameter
        let parameters = Double(targetBytes) / Double(bytesPerParameter)
        let embeddingCopies = tiedHead ? 1 : 2
        var dimensions: [Int] = [8, 16, 32]
        dimensions.append(contentsOf: stride(from: 64, through: 16384, by: 64))

        var best: (shape: BenchModelShape, error: Double, cost: Double)?
        for d in dimensions {
            let perLayer = Double(BenchModelShape(modelDim: d, layers: 1, vocab: 0).parametersPerLayer)
            for layers in 1...256 {
                let rest = parameters - Double(layers) * perLayer - Double(2 * d)
                if rest < Double(8 * embeddingCopies * d) { break }
                let vocab = Int((rest / Double(embeddingCopies * d) / 8).rounded()) * 8
                guard vocab <= 1 << 18 else { continue }
                let shape = BenchModelShape(modelDim: d, layers: layers, vocab: vocab, tiedHead: tiedHead)
                let bytes = Double(shape.parameterCount * bytesPerParameter)
                let error = abs(bytes - Double(targetBytes)) / Double(targetBytes)
                let cost = 2 * abs(log2(Double(d) / Double(layers) / 64)) + abs(log2(Double(vocab) / 50304))
                let candidate = (shape: shape, error: error, cost: cost)
                guard let current = best else {
                    best = candidate
                    continue
                }
                let within = error <= 0.005
                let currentWithin = current.error <= 0.005
                if within != currentWithin {
                    if within { best = candidate }
                } else if within ? cost < current.cost : error < current.error {
                    best = candidate
                }
            }
        }
        guard let chosen = best else {
            throw .invalidSize(bytes: targetBytes, reason: "too small for the smallest model (d=8, 1 layer)")
        }
        return BenchWorkload(shape: chosen.shape, mix: mix)
    }

    /// Total bytes of all tensors.
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// The tensor named `fqn`, if any.
    public func tensor(named fqn: String) -> BenchTensor? {
        tensors.first { $0.fqn == fqn }
    }

    /// The FSDP-style layout over `ranks` ranks: every tensor split along dimension 0 like
    /// `torch.chunk` (ceil split: uneven shards, possibly empty trailing shards, which are omitted
    /// from a rank's list). With `axis: .columns`, 2-D tensors are split along dimension 1 instead.
    public func shardLayout(ranks: Int, axis: BenchShardLayout.Axis = .rows) throws(BenchWorkloadError)
        -> BenchShardLayout
    {
        guard ranks >= 1 else { throw .invalidRanks(ranks) }
        var chunksByRank = [[BenchChunk]](repeating: [], count: ranks)
        for tensor in tensors {
            let dimension = (axis == .columns && tensor.shape.count == 2) ? 1 : 0
            for (rank, chunk) in BenchSharding.split(tensor, dimension: dimension, parts: ranks).enumerated()
            where !chunk.isEmpty {
                chunksByRank[rank].append(chunk)
            }
        }
        return BenchShardLayout(ranks: ranks, axis: axis, chunksByRank: chunksByRank)
    }

    /// The layout a resharded load onto `ranks` ranks asks for: the same row rule as
    /// ``shardLayout(ranks:axis:)``, so a load from N to M ranks reads M-rank boxes out of N-rank files.
    public func targetLayout(ranks: Int) throws(BenchWorkloadError) -> BenchShardLayout {
        try shardLayout(ranks: ranks, axis: .rows)
    }
}
