import Testing

@testable import CkptBench

@Suite struct WorkloadTests {
    @Test(arguments: [1 << 20, 5 << 20, 64 << 20, 256 << 20, 1 << 30, 3 << 30, 4 << 30, 40 << 30])
    func sizingIsWithinTolerance(target: Int) throws {
        for mix in BenchStateMix.allCases {
            let workload = try BenchWorkload.sized(targetBytes: target, mix: mix)
            let error = abs(Double(workload.totalBytes - target)) / Double(target)
            #expect(error < 0.02, "target \(target) mix \(mix): got \(workload.totalBytes) (\(workload.shape))")
            #expect(workload.shape.parameterCount * mix.bytesPerParameter == workload.totalBytes)
        }
    }

    @Test func defaultSizeIsOneGiBAndDeterministic() throws {
        #expect(BenchWorkload.defaultSizeBytes == 1 << 30)
        let a = try BenchWorkload.sized(targetBytes: BenchWorkload.defaultSizeBytes)
        let b = try BenchWorkload.sized(targetBytes: BenchWorkload.defaultSizeBytes)
        #expect(a == b)
        #expect(a.shape.modelDim % 64 == 0)
        #expect(a.shape.layers >= 2)
        #expect((32_000...131_072).contains(a.shape.vocab), "\(a.shape)")
        let ratio = Double(a.shape.modelDim) / Double(a.shape.layers)
        #expect(ratio >= 32 && ratio <= 128, "\(a.shape)")
    }

    @Test func tensorListMatchesTheModel() throws {
        let shape = BenchModelShape(modelDim: 64, layers: 2, vocab: 100, tiedHead: false)
        let workload = BenchWorkload(shape: shape, mix: .mixedPrecisionAdam)
        // 2 embeddings-ish + 12 per layer + 2 final norm, times (model + 3 optimizer tensors).
        #expect(workload.tensors.count == (1 + 2 * 12 + 2 + 1) * 4)
        let qkv = try #require(workload.tensor(named: "model.layers.1.attn.qkv.weight"))
        #expect(qkv.shape == [192, 64])
        #expect(qkv.dtype == .bfloat16)
        let fc2 = try #require(workload.tensor(named: "optim.state.layers.0.mlp.fc2.weight.exp_avg_sq"))
        #expect(fc2.shape == [64, 256])
        #expect(fc2.dtype == .float32)
        #expect(workload.tensor(named: "model.lm_head.weight")?.shape == [100, 64])
        #expect(workload.tensor(named: "optim.state.norm.bias.master")?.dtype == .float32)
        #expect(workload.totalBytes == shape.parameterCount * 14)
        #expect(workload.values["step"] == .int(1000))
        #expect(workload.values["optim.param_groups.0.lr"] == .double(3e-4))

        let tied = BenchWorkload(shape: BenchModelShape(modelDim: 64, layers: 2, vocab: 100), mix: .bf16Model)
        #expect(tied.tensor(named: "model.lm_head.weight") == nil)
        #expect(tied.tensors.allSatisfy { $0.dtype == .bfloat16 && $0.fqn.hasPrefix("model.") })
        #expect(tied.values["optim.param_groups.0.lr"] == nil)
    }

    @Test func invalidSizesAreRejected() {
        #expect(throws: BenchWorkloadError.self) { try BenchWorkload.sized(targetBytes: 0) }
        #expect(throws: BenchWorkloadError.self) { try BenchWorkload.sized(targetBytes: -5) }
        #expect(throws: BenchWorkloadError.self) { try BenchWorkload.sized(targetBytes: Int.max) }
    }
}
