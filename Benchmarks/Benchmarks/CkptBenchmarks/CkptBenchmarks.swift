// Micro-benchmarks of the hot pure code of ckpt: the resharding load planner, the save planner and
// the consolidation's streaming copy planner on large layouts, the `.metadata` pickle codec, and the checksums (CRC-32 through CkptFormat's
// public `crc32`). Metrics: wall clock, throughput and mallocs; the work is checked once in setup
// so a benchmark cannot time a no-op.
import Benchmark
import CkptFormat
import CkptPlan

/// An 80 x 125 mesh of [64, 32] chunks of a [5120, 4000] float32 tensor (10k saved chunks),
/// saved by 8 ranks round robin.
struct MeshLayout {
    static let shape = [5120, 4000]
    let rankItems: [[SaveItem]]
    let saved: SavedEntry
    let payloads: [Int: PayloadLocation]

    init() {
        var chunks: [ChunkBox] = []
        var items = [[SaveItem]](repeating: [], count: 8)
        var payloads: [Int: PayloadLocation] = [:]
        var fileOffsets = [Int](repeating: 0, count: 8)
        for row in 0..<80 {
            for column in 0..<125 {
                let chunk = ChunkBox(offsets: [row * 64, column * 32], sizes: [64, 32])
                let index = chunks.count
                let rank = index % 8
                chunks.append(chunk)
                items[rank].append(.tensor(TensorWriteItem(
                    fqn: "w", globalShape: Self.shape, elementSize: 4, dtype: "float32", chunk: chunk)))
                payloads[index] = PayloadLocation(file: rank, offset: fileOffsets[rank] + 1577, length: 64 * 32 * 4)
                fileOffsets[rank] += 1577 + 64 * 32 * 4
            }
        }
        rankItems = items
        saved = .tensor(SavedTensorLayout(globalShape: Self.shape, elementSize: 4, dtype: "float32", chunks: chunks))
        self.payloads = payloads
    }

    /// Rank `rank` of 8 asks for its row shard [640, 4000].
    func request(rank: Int) -> TensorLoadRequest {
        TensorLoadRequest(
            fqn: "w", globalShape: Self.shape, elementSize: 4, dtype: "float32",
            localChunks: [LocalChunk(box: ChunkBox(offsets: [rank * 640, 0], sizes: [640, 4000]), destination: 0)])
    }
}

/// A GPT-like state of `tensors` 2-D tensors, each row-sharded over `ranks` ranks: `.metadata`
/// with tensors * ranks chunks.
func gptMetadata(tensors: Int, ranks: Int) -> DCPMetadata {
    var state = OrderedMap<String, StorageMetadata>()
    var storage = OrderedMap<MetadataIndex, StorageInfo>()
    var planner = OrderedMap<String, [PlannerPathElement]>()
    var offsets = [Int](repeating: 0, count: ranks)
    for t in 0..<tensors {
        let fqn = "model.layers.\(t / 12).block\(t % 12).weight"
        let shape = [1024, 1024]
        let rows = shape[0] / ranks
        var chunks: [ChunkStorageMetadata] = []
        for r in 0..<ranks {
            let chunk = ChunkStorageMetadata(offsets: [r * rows, 0], sizes: [rows, shape[1]])
            chunks.append(chunk)
            let length = rows * shape[1] * 2
            storage[MetadataIndex(fqn: fqn, offset: chunk.offsets, index: 0)] =
                StorageInfo(relativePath: "__\(r)_0.distcp", offset: offsets[r], length: length)
            offsets[r] += length + 1024
        }
        state[fqn] = .tensor(TensorStorageMetadata(
            properties: TensorProperties(dtype: .bfloat16), size: shape, chunks: chunks))
        planner[fqn] = [.key(fqn)]
    }
    return DCPMetadata(stateDictMetadata: state, plannerData: planner, storageData: storage)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 2,
        maxDuration: .seconds(2),
        maxIterations: 1000)

    // MARK: Planners

    let mesh = MeshLayout()
    Benchmark("SavePlanner.plan 10k chunks x 8 ranks") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try SavePlanner.plan(ranks: mesh.rankItems))
        }
    }
    Benchmark("LoadPlanner.planOverlaps 10k saved chunks, 8 row shards") { benchmark in
        for _ in benchmark.scaledIterations {
            for rank in 0..<8 {
                blackHole(try LoadPlanner.planOverlaps(mesh.request(rank: rank), saved: mesh.saved))
            }
        }
    }
    Benchmark("LoadPlanner.planOverlaps+planReads 10k saved chunks, 8 row shards") { benchmark in
        for _ in benchmark.scaledIterations {
            for rank in 0..<8 {
                let plan = try LoadPlanner.planOverlaps(mesh.request(rank: rank), saved: mesh.saved)
                blackHole(try LoadPlanner.planReads(tensors: [TensorReadSource(plan: plan, payloads: mesh.payloads)]))
            }
        }
    }

    // MARK: Consolidation's streaming copy

    // The output of a consolidation: each tensor's bytes in C order, from its saved chunks.
    func consolidationRuns(_ requests: [(TensorLoadRequest, SavedEntry, [Int: PayloadLocation])]) throws -> (runs: [StreamCopyRun], length: Int, files: [Int]) {
        var runs: [StreamCopyRun] = []
        var at = 0
        var fileSizes = [Int](repeating: 0, count: 8)
        for (request, saved, payloads) in requests {
            var whole = request
            whole.localChunks = [LocalChunk(box: ChunkBox(offsets: request.globalShape.map { _ in 0 }, sizes: request.globalShape), destination: 0, baseOffset: at)]
            let plan = try LoadPlanner.planOverlaps(whole, saved: saved)
            for overlap in plan.overlaps {
                guard let payload = payloads[overlap.savedChunk] else { continue }
                fileSizes[payload.file] = max(fileSizes[payload.file], payload.offset + payload.length)
                for run in LoadPlanner.copyRuns(for: overlap, in: plan, payload: payload) {
                    runs.append(StreamCopyRun(outputOffset: run.destinationOffset, length: run.length, source: .file(run.file, offset: run.sourceOffset)))
                }
            }
            at += whole.globalShape.reduce(whole.elementSize, *) + 4096
        }
        return (runs, at, fileSizes)
    }
    // 10k [64, 32] chunks of one tensor on 8 ranks: a run per chunk row (640k runs).
    let meshCopyResult = Result { try consolidationRuns([(mesh.request(rank: 0), mesh.saved, mesh.payloads)]) }
    Benchmark("StreamCopyPlanner.plan 10k chunks x 64 rows (640k runs)") { benchmark in
        let meshCopy = try meshCopyResult.get()
        for _ in benchmark.scaledIterations {
            blackHole(try StreamCopyPlanner.plan(
                runs: meshCopy.runs, outputLength: meshCopy.length, fileSizes: meshCopy.files, windowSize: 4 << 20, imageSize: 4 << 20))
        }
    }
    // 1200 row-sharded tensors on 8 ranks (9600 runs, 2.4 GiB).
    let gpt = gptMetadata(tensors: 1200, ranks: 8)
    var gptRequests: [(TensorLoadRequest, SavedEntry, [Int: PayloadLocation])] = []
    for (fqn, entry) in gpt.stateDictMetadata.entries {
        guard case .tensor(let t) = entry else { continue }
        var payloads: [Int: PayloadLocation] = [:]
        for (i, chunk) in t.chunks.enumerated() {
            if let info = gpt.storage(fqn: fqn, offsets: chunk.offsets) {
                payloads[i] = PayloadLocation(file: Int(info.relativePath.dropFirst(2).prefix(1)) ?? 0, offset: info.offset, length: info.length)
            }
        }
        let saved = SavedEntry.tensor(SavedTensorLayout(
            globalShape: t.size, elementSize: 2, dtype: "bfloat16", chunks: t.chunks.map { ChunkBox(offsets: $0.offsets, sizes: $0.sizes) }))
        gptRequests.append((TensorLoadRequest(fqn: fqn, globalShape: t.size, elementSize: 2, dtype: "bfloat16", localChunks: []), saved, payloads))
    }
    let gptCopyResult = Result { try consolidationRuns(gptRequests) }
    Benchmark("StreamCopyPlanner.plan 1200 tensors x 8 row shards (2.4 GiB)") { benchmark in
        let gptCopy = try gptCopyResult.get()
        for _ in benchmark.scaledIterations {
            blackHole(try StreamCopyPlanner.plan(
                runs: gptCopy.runs, outputLength: gptCopy.length, fileSizes: gptCopy.files, windowSize: 4 << 20, imageSize: 4 << 20))
        }
    }

    // MARK: Metadata codec (pickle)

    let metadata = gptMetadata(tensors: 1200, ranks: 8)
    let encoded = metadata.encoded()
    Benchmark(
        "DCPMetadata.encoded 1200 tensors x 8 chunks",
        configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal])
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(metadata.encoded())
        }
    }
    Benchmark("DCPMetadata(decoding:) 1200 tensors x 8 chunks") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try DCPMetadata(decoding: encoded))
        }
    }
    // The size of ckpt-bench's 1 GiB model saved by 4 ranks (~2000 chunks, ~400 KB).
    let benchSized = gptMetadata(tensors: 500, ranks: 4).encoded()
    Benchmark("DCPMetadata(decoding:) 500 tensors x 4 chunks") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try DCPMetadata(decoding: benchSized))
        }
    }
    Benchmark("PickleReader.decode .metadata (1200 tensors x 8 chunks)") { benchmark in
        let reader = PickleReader()
        for _ in benchmark.scaledIterations {
            blackHole(try reader.decode(encoded))
        }
    }

    // MARK: Checksums

    let megabytes = 16
    let payload: [UInt8] = (0..<(megabytes << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
    Benchmark(
        "crc32 16 MiB (zlib, as zip records need)",
        configuration: .init(metrics: [.wallClock, .throughput], scalingFactor: .one)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(payload.withUnsafeBytes { crc32($0) })
        }
    }
}
