import CkptTestSupport
import Foundation
import Testing

@testable import CkptPlan

/// Save on N ranks with one random layout, load on M ranks with another, entirely in memory, and
/// check every destination byte.
@Suite struct ReshardPropertyTests {
    struct TensorCase {
        var fqn: String
        var shape: [Int]
        var elementSize: Int
        var global: [UInt8]
        var dtype: String { "e\(elementSize)" }
    }

    /// What a batch of cases exercised, printed so a degenerate generator would show.
    struct Coverage {
        var cases = 0
        var reads = 0
        var stagedReads = 0
        var scatterEntries = 0
        var bytesVerified = 0
        var multiDimTensors = 0
        var emptyTensors = 0
        var zeroDimTensors = 0
        var replicatedSaves = 0
    }

    /// Runs one random case and adds what it exercised to `coverage`.
    static func runCase(seed: UInt64, coverage: inout Coverage) throws {
        coverage.cases += 1
        var rng = SplitMix64(seed: seed)
        let saveRanks = rng.int(1...8)

        // Tensors and their saved chunks per rank.
        var tensors: [TensorCase] = []
        var rankItems = [[SaveItem]](repeating: [], count: saveRanks)
        for index in 0..<rng.int(1...3) {
            let shape = Simulation.randomShape(rng: &rng)
            let elementSize = rng.pick([1, 2, 4, 8, 16])
            let volume = BoxMath.volume(shape) ?? 0
            let tensor = TensorCase(
                fqn: "t\(index)", shape: shape, elementSize: elementSize, global: rng.bytes(volume * elementSize))
            tensors.append(tensor)
            if shape.isEmpty { coverage.zeroDimTensors += 1 }
            if shape.count >= 2 { coverage.multiDimTensors += 1 }
            if volume == 0 { coverage.emptyTensors += 1 }

            var perRank = [[ChunkBox]](repeating: [], count: saveRanks)
            let mode = rng.int(0...9)
            if mode == 0 || shape.isEmpty && mode < 5 {
                // Plain tensor: the whole tensor on every rank (or a subset).
                for rank in 0..<saveRanks where rank == 0 || rng.chance(0.7) {
                    perRank[rank].append(ChunkBox(wholeTensorOfShape: shape))
                }
            } else if mode <= 2, !shape.isEmpty {
                // DTensor Shard(dim) on all ranks, torch-style empty shards.
                let dim = rng.int(0...(shape.count - 1))
                for (rank, box) in Simulation.torchShards(shape, dim: dim, count: saveRanks).enumerated() {
                    perRank[rank].append(box)
                }
            } else {
                // Random grid, cells spread over ranks, some replicated.
                let style = rng.pick(Simulation.GridStyle.allCases)
                var cells: [ChunkBox] = []
                var seenOffsets = Set<[Int]>()
                // Non-empty cells first so an empty cell never shadows one with the same offsets.
                let raw = Simulation.partition(shape, style: style, rng: &rng)
                for cell in raw.filter({ ($0.volume ?? 0) > 0 }) + raw.filter({ ($0.volume ?? 0) == 0 })
                where seenOffsets.insert(cell.offsets).inserted {
                    cells.append(cell)
                }
                for cell in cells {
                    let owner = rng.int(0...(saveRanks - 1))
                    perRank[owner].append(cell)
                    if rng.chance(0.25) {
                        for rank in 0..<saveRanks where rank != owner && rng.chance(0.5) {
                            perRank[rank].append(cell)
                        }
                    }
                }
            }
            for rank in 0..<saveRanks {
                perRank[rank].shuffle(using: &rng)
                for box in perRank[rank] {
                    rankItems[rank].append(
                        .tensor(
                            TensorWriteItem(
                                fqn: tensor.fqn, globalShape: shape, elementSize: elementSize,
                                dtype: tensor.dtype, chunk: box)))
                }
            }
        }
        let bytesNames = (0..<rng.int(0...3)).map { "b\($0)" }
        var bytesValues: [String: [UInt8]] = [:]
        for name in bytesNames {
            bytesValues[name] = rng.bytes(rng.int(1...20))
            for rank in 0..<saveRanks where rank == 0 || rng.chance(0.6) {
                rankItems[rank].append(.bytes(fqn: name))
            }
        }

        // Save plan.
        let dedup = rng.pick([SavePlanOptions.DedupPolicy.smallestPlan, .lowestRank, .balancedByBytes])
        let layout: SavePlanOptions.FileLayout =
            rng.chance(0.1) ? .filePerItem : .singleFilePerRank(filesPerRank: rng.int(1...3))
        let savePlan = try SavePlanner.plan(ranks: rankItems, options: SavePlanOptions(dedup: dedup, fileLayout: layout))

        // Every distinct identity is written exactly once, by a rank that holds it.
        var written = Set<String>()
        for (rank, files) in savePlan.files.enumerated() {
            var inFiles: [Int] = []
            for file in files {
                let kinds = file.items.map { rankItems[rank][$0].isBytes }
                #expect(kinds == kinds.sorted { $0 && !$1 }, "seed \(seed): BYTE_IO first")
                inFiles += file.items
            }
            #expect(inFiles.sorted() == savePlan.keptItems[rank], "seed \(seed)")
            for item in inFiles {
                #expect(written.insert(identity(rankItems[rank][item])).inserted, "seed \(seed): written twice")
            }
        }
        #expect(written == Set(rankItems.flatMap { $0.map(identity) }), "seed \(seed)")

        // Lay the files out in memory: junk, then records with junk between them.
        var files: [[UInt8]] = []
        var fileIDs: [[Int]] = []
        var locations: [SaveItemReference: PayloadLocation] = [:]
        var payloadRanges: [Int: [Range<Int>]] = [:]
        for (rank, planned) in savePlan.files.enumerated() {
            var ids: [Int] = []
            for file in planned {
                let id = files.count
                ids.append(id)
                var bytes = rng.bytes(rng.int(0...24))
                for item in file.items {
                    if rng.chance(0.7) { bytes += rng.bytes(rng.int(1...24)) }
                    let payload: [UInt8]
                    switch rankItems[rank][item] {
                    case .tensor(let write):
                        let tensor = tensors.first { $0.fqn == write.fqn }!
                        payload = Simulation.extract(
                            write.chunk, from: tensor.global, shape: tensor.shape, elementSize: tensor.elementSize)
                    case .bytes(let fqn, _):
                        payload = bytesValues[fqn]!
                    }
                    locations[SaveItemReference(rank: rank, item: item)] = PayloadLocation(
                        file: id, offset: bytes.count, length: payload.count)
                    payloadRanges[id, default: []].append(bytes.count..<(bytes.count + payload.count))
                    bytes += payload
                }
                bytes += rng.bytes(rng.int(0...8))
                files.append(bytes)
            }
            fileIDs.append(ids)
        }

        // Load on M ranks with other layouts.
        let loadRanks = rng.int(1...8)
        var localPerRank = [[[ChunkBox]]](repeating: [[ChunkBox]](repeating: [], count: tensors.count), count: loadRanks)
        for (tensorIndex, tensor) in tensors.enumerated() {
            if rng.chance(0.15) || tensor.shape.isEmpty {
                for rank in 0..<loadRanks { localPerRank[rank][tensorIndex] = [ChunkBox(wholeTensorOfShape: tensor.shape)] }
            } else if rng.chance(0.25) {
                let dim = rng.int(0...(tensor.shape.count - 1))
                for (rank, box) in Simulation.torchShards(tensor.shape, dim: dim, count: loadRanks).enumerated() {
                    localPerRank[rank][tensorIndex] = [box]
                }
            } else {
                let cells = Simulation.partition(tensor.shape, style: rng.pick(Simulation.GridStyle.allCases), rng: &rng)
                for cell in cells { localPerRank[rng.int(0...(loadRanks - 1))][tensorIndex].append(cell) }
            }
        }

        for id in Set(rankItems.flatMap { $0.map(identity) }) {
            if rankItems.filter({ $0.contains { identity($0) == id } }).count > 1 {
                coverage.replicatedSaves += 1
            }
        }
        for rank in 0..<loadRanks {
            // Destinations: one packed buffer per rank, or one buffer per local chunk.
            var buffers: [[UInt8]] = []
            var written: [[Bool]] = []
            var expectations: [(buffer: Int, base: Int, box: ChunkBox, tensor: Int)] = []
            var requests: [TensorLoadRequest] = []
            let packed = rng.chance(0.5)
            var packedSize = 0
            if packed {
                buffers.append([])
            }
            for (tensorIndex, tensor) in tensors.enumerated() {
                var locals: [LocalChunk] = []
                var boxes = localPerRank[rank][tensorIndex]
                if let first = boxes.first, rng.chance(0.1) { boxes.append(first) }  // same block twice
                for chunk in boxes {
                    let bytes = (chunk.volume ?? 0) * tensor.elementSize
                    let buffer: Int
                    let base: Int
                    if packed {
                        packedSize += rng.int(0...16)
                        (buffer, base) = (0, packedSize)
                        packedSize += bytes
                    } else {
                        buffers.append([])
                        (buffer, base) = (buffers.count - 1, rng.int(0...8))
                        buffers[buffer] = [UInt8](repeating: 0, count: base + bytes + rng.int(0...8))
                    }
                    locals.append(LocalChunk(box: chunk, destination: buffer, baseOffset: base))
                    expectations.append((buffer, base, chunk, tensorIndex))
                }
                if !locals.isEmpty || rng.chance(0.2) {
                    requests.append(
                        TensorLoadRequest(
                            fqn: tensor.fqn, globalShape: tensor.shape, elementSize: tensor.elementSize,
                            dtype: tensor.dtype, localChunks: locals))
                }
            }
            if packed { buffers[0] = [UInt8](repeating: 0, count: packedSize + 8) }

            var sources: [TensorReadSource] = []
            for request in requests {
                guard let entry = savePlan.metadata.first(where: { $0.fqn == request.fqn }),
                    case .tensor(let model) = entry.kind
                else {
                    Issue.record("seed \(seed): \(request.fqn) missing from metadata")
                    continue
                }
                let saved = SavedTensorLayout(
                    globalShape: model.globalShape, elementSize: model.elementSize, dtype: model.dtype,
                    chunks: model.chunks.map(\.box))
                let plan = try LoadPlanner.planOverlaps(request, saved: .tensor(saved))
                // Needed chunks = brute-force overlaps.
                var brute = Set<Int>()
                for local in request.localChunks {
                    for (index, chunk) in saved.chunks.enumerated()
                    where BoxMath.overlaps(chunk, local.box) && chunk.volume != 0 && local.box.volume != 0 {
                        brute.insert(index)
                    }
                }
                #expect(plan.neededSavedChunks == brute.sorted(), "seed \(seed) rank \(rank) \(request.fqn)")
                var payloads: [Int: PayloadLocation] = [:]
                for index in plan.neededSavedChunks {
                    payloads[index] = locations[model.chunks[index].writer]
                }
                sources.append(TensorReadSource(plan: plan, payloads: payloads))
            }
            var bytesRequests: [BytesReadRequest] = []
            var bytesExpectations: [(buffer: Int, value: [UInt8])] = []
            for name in bytesNames where rng.chance(0.5) {
                guard let entry = savePlan.metadata.first(where: { $0.fqn == name }),
                    case .bytes(let writer) = entry.kind, let location = locations[writer]
                else {
                    Issue.record("seed \(seed): \(name) missing")
                    continue
                }
                buffers.append([UInt8](repeating: 0, count: location.length))
                bytesRequests.append(
                    BytesReadRequest(
                        fqn: name, file: location.file, offset: location.offset, length: location.length,
                        destination: buffers.count - 1))
                bytesExpectations.append((buffers.count - 1, bytesValues[name]!))
            }
            let options: ReadPlanOptions
            switch rng.int(0...5) {
            case 0: options = ReadPlanOptions(gapBudgetFraction: 0, maxReadSize: rng.int(1...64))
            case 1: options = ReadPlanOptions(gapBudgetFraction: 0.3, maxReadSize: rng.int(8...256))
            default: options = ReadPlanOptions()
            }
            let plan = try LoadPlanner.planReads(tensors: sources, bytes: bytesRequests, options: options)

            // Execute the plan.
            written = buffers.map { [Bool](repeating: false, count: $0.count) }
            var readBytes = 0
            for filePlan in plan.files {
                let file = files[filePlan.file]
                let ranges = payloadRanges[filePlan.file] ?? []
                #expect(filePlan.reads.map(\.offset) == filePlan.reads.map(\.offset).sorted(), "seed \(seed)")
                for read in filePlan.reads {
                    coverage.reads += 1
                    coverage.scatterEntries += read.scatter.count
                    if !read.isDirect { coverage.stagedReads += 1 }
                    readBytes += read.length
                    #expect(read.length > 0 && read.length <= options.maxReadSize, "seed \(seed)")
                    let inside = ranges.contains { $0.lowerBound <= read.offset && read.offset + read.length <= $0.upperBound }
                    #expect(inside, "seed \(seed): read \(read.offset)+\(read.length) leaves its payload")
                    guard inside else { continue }
                    let buffer = Array(file[read.offset..<(read.offset + read.length)])
                    for entry in read.scatter {
                        #expect(entry.bufferOffset >= 0 && entry.bufferOffset + entry.length <= read.length, "seed \(seed)")
                        buffers[entry.destination].withUnsafeMutableBytes { dst in
                            buffer.withUnsafeBytes { src in
                                (dst.baseAddress! + entry.destinationOffset).copyMemory(
                                    from: src.baseAddress! + entry.bufferOffset, byteCount: entry.length)
                            }
                        }
                        for offset in entry.destinationOffset..<(entry.destinationOffset + entry.length) {
                            written[entry.destination][offset] = true
                        }
                    }
                    if read.isDirect { #expect(read.scatter.count == 1) }
                }
            }
            #expect(readBytes == plan.readBytes, "seed \(seed)")
            let budget = Int((Double(plan.neededBytes) * options.gapBudgetFraction).rounded(.down))
            #expect(plan.readBytes <= plan.neededBytes + budget, "seed \(seed): read \(plan.readBytes) for \(plan.neededBytes) needed")
            if options.gapBudgetFraction <= 0.01 {
                #expect(plan.readBytes * 100 <= plan.neededBytes * 101, "seed \(seed)")
            }

            // Verify every destination byte; nothing outside the blocks is written.
            var expectedWritten = buffers.map { [Bool](repeating: false, count: $0.count) }
            for expectation in expectations {
                let tensor = tensors[expectation.tensor]
                let size = tensor.elementSize
                let ok = buffers[expectation.buffer].withUnsafeBytes { dst in
                    tensor.global.withUnsafeBytes { src in
                        var good = true
                        Simulation.forEachElement(of: expectation.box, in: tensor.shape) { local, global in
                            if memcmp(dst.baseAddress! + expectation.base + local * size, src.baseAddress! + global * size, size) != 0 {
                                good = false
                            }
                        }
                        return good
                    }
                }
                #expect(ok, "seed \(seed) rank \(rank): wrong bytes in \(tensor.fqn) block \(expectation.box)")
                let bytes = (expectation.box.volume ?? 0) * size
                coverage.bytesVerified += bytes
                for offset in expectation.base..<(expectation.base + bytes) { expectedWritten[expectation.buffer][offset] = true }
            }
            for (buffer, value) in bytesExpectations {
                #expect(buffers[buffer] == value, "seed \(seed): BYTE_IO value")
                for offset in 0..<value.count { expectedWritten[buffer][offset] = true }
            }
            #expect(written == expectedWritten, "seed \(seed) rank \(rank): written bytes differ from the requested blocks")
        }
    }

    @Test(arguments: 0..<8)
    func randomLayouts(batch: Int) throws {
        var coverage = Coverage()
        for index in 0..<600 {
            let seed = UInt64(batch * 1_000_003 + index) &* 0x9E37_79B9
            do {
                try Self.runCase(seed: seed, coverage: &coverage)
            } catch {
                Issue.record("seed \(seed): \(error)")
            }
        }
        #expect(coverage.reads > 0 && coverage.stagedReads > 0 && coverage.replicatedSaves > 0)
        print("reshard batch \(batch): \(coverage)")
    }
}
