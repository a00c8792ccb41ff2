import CkptFormat
import CkptIO
import Foundation
import CkptTestSupport
import Testing
@testable import Ckpt

@Suite struct SaveLoadTests {
    static let dtypes: [DType] = [.float32, .bfloat16, .float16, .float64, .int64, .int8, .uint8, .bool, .complex64]

    /// Builds each rank's state dict for `tensors` laid out by `grids` (filled from the globals).
    static func states(
        _ tensors: [GlobalTensor], grids: [[[(offsets: [Int], sizes: [Int])]]], ranks: Int, fill: Bool
    ) -> [StateDict] {
        (0..<ranks).map { rank in
            var state = StateDict()
            for (t, tensor) in tensors.enumerated() {
                var chunks: [TensorChunk] = []
                for box in grids[t][rank] {
                    let bytes = tensor.block(offsets: box.offsets, sizes: box.sizes)
                    let buffer = TensorBuffer(byteCount: bytes.count)
                    if fill { buffer.bytes.copyBytes(from: bytes) }
                    chunks.append(TensorChunk(offsets: box.offsets, sizes: box.sizes, buffer: buffer))
                }
                state.set(tensor.fqn, .tensor(TensorEntry(dtype: tensor.dtype, globalShape: tensor.shape, chunks: chunks)))
            }
            state.set("optim.step", .value(.int(Int64(1234))))
            state.set("optim.name", .value(.string("adamw")))
            return state
        }
    }

    @Test(arguments: (1...48).map { UInt64($0) })
    func randomLayoutsRoundTripAcrossWorldSizes(seed: UInt64) async throws {
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9)
        let saveRanks = Int.random(in: 1...8, using: &rng)
        let loadRanks = Int.random(in: 1...8, using: &rng)
        var tensors: [GlobalTensor] = []
        for i in 0..<Int.random(in: 1...6, using: &rng) {
            let dims = Int.random(in: 0...3, using: &rng)
            let shape = (0..<dims).map { _ in Int.random(in: 0...40, using: &rng) == 0 ? 0 : Int.random(in: 1...40, using: &rng) }
            let dtype = Self.dtypes[Int.random(in: 0..<Self.dtypes.count, using: &rng)]
            tensors.append(GlobalTensor(fqn: "model.t\(i)", dtype: dtype, shape: shape, rng: &rng))
        }
        let saveGrids = tensors.map { RandomGrid.make(shape: $0.shape, ranks: saveRanks, rng: &rng) }
        let loadGrids = tensors.map { RandomGrid.make(shape: $0.shape, ranks: loadRanks, rng: &rng) }
        let direct = Bool.random(using: &rng)
        let dir = TempDir()
        defer { dir.cleanup() }
        let engine = try makeEngine()
        let options = CheckpointOptions(filesPerRank: Int.random(in: 1...2, using: &rng), direct: direct, directPayloadThreshold: 4096)
        let saveStates = Self.states(tensors, grids: saveGrids, ranks: saveRanks, fill: true)
        _ = try await onRanks(saveRanks) { comm in
            try await Checkpointer(engine: engine, communicator: comm, options: options).save(saveStates[comm.rank], to: dir.path)
        }
        let loadStates = Self.states(tensors, grids: loadGrids, ranks: loadRanks, fill: false)
        let reports = try await onRanks(loadRanks) { comm in
            try await Checkpointer(engine: engine, communicator: comm, options: CheckpointOptions(direct: direct, verifyChecksums: true))
                .load(into: loadStates[comm.rank], from: dir.path)
        }
        for (rank, state) in loadStates.enumerated() {
            for tensor in tensors {
                guard case .tensor(let entry)? = state[tensor.fqn] else { Issue.record("missing \(tensor.fqn)"); continue }
                for chunk in entry.chunks {
                    let want = tensor.block(offsets: chunk.offsets, sizes: chunk.sizes)
                    let got = Array(chunk.buffer.bytes.prefix(want.count))
                    #expect(got == want, "seed \(seed): \(tensor.fqn) \(tensor.dtype) \(tensor.shape) chunk \(chunk.offsets)/\(chunk.sizes) on load rank \(rank) of \(loadRanks) (saved by \(saveRanks))")
                }
            }
            #expect(reports[rank].values["optim.step"] == .int(1234))
            #expect(reports[rank].values["optim.name"] == .string("adamw"))
            let r = reports[rank]
            #expect(r.payloadBytesRead <= Int((Double(r.neededBytes) * 1.01).rounded(.up)), "seed \(seed): read \(r.payloadBytesRead) for \(r.neededBytes) needed")
        }
        #expect(engine.buffers.heldBytes == 0)
        await engine.shutdown()
    }
}

@Suite struct SharedPoolTests {
    /// 8 ranks share one engine whose pool has only 4 small buffers; several files per rank,
    /// unaligned borrowed memory (so the engine must stage), resharded load with column shards.
    /// Everything must finish (a deadlock on the pool would hang: the test has a time limit).
    @Test(.timeLimit(.minutes(1)))
    func tinySharedPoolNeverDeadlocks() async throws {
        var rng = SplitMix64(seed: 77)
        let tensors = (0..<5).map { GlobalTensor(fqn: "t\($0)", dtype: .float32, shape: [96, 70 + $0], rng: &rng) }
        let engine = try makeEngine(bufferSize: 16 << 10, bufferCount: 4)
        let dir = TempDir(); defer { dir.cleanup() }
        // Unaligned borrowed memory: one extra byte in front of every chunk.
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { arena.deallocate() }
        var cursor = 1
        func states(_ ranks: Int, axis: Int, fill: Bool) -> [StateDict] {
            (0..<ranks).map { rank in
                var s = StateDict()
                for t in tensors {
                    let n = t.shape[axis], step = (n + ranks - 1) / ranks
                    let start = min(rank * step, n), len = min(step, n - start)
                    var offsets = [0, 0], sizes = t.shape
                    offsets[axis] = start
                    sizes[axis] = len
                    let bytes = t.block(offsets: offsets, sizes: sizes)
                    let memory = UnsafeMutableRawBufferPointer(rebasing: arena[cursor..<(cursor + bytes.count)])
                    cursor += bytes.count + 1
                    if fill { memory.copyBytes(from: bytes) } else { memory.initializeMemory(as: UInt8.self, repeating: 0) }
                    s.set(t.fqn, .tensor(TensorEntry(dtype: .float32, globalShape: t.shape, chunks: [
                        TensorChunk(offsets: offsets, sizes: sizes, buffer: TensorBuffer(borrowing: memory)),
                    ])))
                }
                return s
            }
        }
        let saved = states(8, axis: 0, fill: true)
        _ = try await onRanks(8) { comm in
            try await Checkpointer(engine: engine, communicator: comm, options: CheckpointOptions(filesPerRank: 3, directPayloadThreshold: 4096))
                .save(saved[comm.rank], to: dir.path)
        }
        let loaded = states(6, axis: 1, fill: false)
        _ = try await onRanks(6) { comm in
            try await Checkpointer(engine: engine, communicator: comm).load(into: loaded[comm.rank], from: dir.path)
        }
        for state in loaded {
            for t in tensors {
                guard case .tensor(let e)? = state[t.fqn], let c = e.chunks.first else { Issue.record("missing"); continue }
                #expect(Array(c.buffer.bytes) == t.block(offsets: c.offsets, sizes: c.sizes))
            }
        }
        #expect(engine.buffers.heldBytes == 0)
        await engine.shutdown()
    }
}
