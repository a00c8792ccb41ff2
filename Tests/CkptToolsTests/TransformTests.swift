import CkptFormat
import CkptIO
import CkptPlan
import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

@Suite struct ConsolidateTests {
    @Test(arguments: ["a_4rank_shard0", "c_4rank_uneven_empty", "d_1rank_nested", "e_2rank_safetensors"])
    func consolidatedFixtureMatchesManifest(name: String) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let input = try ToolTest.copyFixture(name, to: tmp.path)
        let output = ConsolidationFormat.torchSave.defaultOutput(for: input + "/")
        #expect(output == input + ".consolidated")
        _ = try await Consolidator(engine: engine).consolidate(input, to: output, format: .torchSave)
        try ToolTest.expectMatchesManifest(try ToolTest.torchSaveTensors(output), fixture: name)

        let st = ConsolidationFormat.safetensors.defaultOutput(for: input)
        #expect(st == input + ".safetensors")
        _ = try await Consolidator(engine: engine).consolidate(input, to: st, format: .safetensors)
        let data = try ToolTest.bytes(st)
        let header = try SafetensorsHeader.parse(data, dataLength: nil)
        var got: [String: (dtype: DType, shape: [Int], sha: String)] = [:]
        for e in header.entries {
            got[e.name] = (e.dtype, e.shape, SHA256.hex(data[(header.dataOffset + e.dataRange.lowerBound)..<(header.dataOffset + e.dataRange.upperBound)]))
        }
        try ToolTest.expectMatchesManifest(got, fixture: name)
        #expect(ToolTest.listing(tmp.path) == [name, name + ".consolidated", name + ".safetensors"])
    }

    @Test func lightningFolderConsolidatesLikeLightning() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let output = tmp.path + "/g.consolidated"
        let report = try await Consolidator(engine: engine).consolidate(Fixtures.path("g_lightning_fsdp_sharded"), to: output, format: .torchSave)
        #expect(report.mergedLightningMeta)
        let ours = try TorchSaveFile(parsing: try ToolTest.bytes(output))
        let theirs = try TorchSaveFile(parsing: try ToolTest.bytes(Fixtures.path("g_lightning_consolidated.pt")))
        guard case .dict(let a) = ours.value, case .dict(let b) = theirs.value else {
            Issue.record("not dicts")
            return
        }
        #expect(Set(a.map(\.key)) == Set(b.map(\.key)))
        let mine = try ToolTest.torchSaveTensors(output)
        let reference = try ToolTest.torchSaveTensors(Fixtures.path("g_lightning_consolidated.pt"))
        #expect(mine.count == reference.count)
        for (fqn, t) in reference {
            #expect(mine[fqn]?.sha == t.sha && mine[fqn]?.shape == t.shape, "\(fqn)")
        }
        // Non-tensor values equal wherever they sit.
        for key in b.map(\.key) where key != .string("state_dict") && key != .string("optimizer_states") {
            let x = a.first { $0.key == key }?.value
            let y = b.first { $0.key == key }?.value
            if x?.tensors().isEmpty ?? true { #expect(x == y, "\(key)") }
        }
    }

    /// The output depends neither on the path (the streaming path of O_DIRECT consolidations, the
    /// tensor-by-tensor batches of buffered ones) nor on how either cuts the work: tiny pieces
    /// (tensors split over many batches or windows, several small tensors per batch) give the
    /// same bytes as one large piece, for both formats, PyTorch's checkpoints (with torch.save
    /// records or the safetensors variant, whose payloads are found by reading record heads), and
    /// a Lightning folder with `meta.pt`.
    @Test(arguments: ["g_lightning_fsdp_sharded", "c_4rank_uneven_empty", "a_4rank_shard0", "e_2rank_safetensors", "d_1rank_nested"])
    func outputIsTheSameWhateverThePathAndPieceSize(name: String) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        for format in [ConsolidationFormat.torchSave, .safetensors] {
            var outputs: [[UInt8]] = []
            var streamed: [Bool] = []
            for piece in [1 << 16, 3 << 14, 64 << 20] {
                for direct in [true, false] {
                    // Same file name (the archive name inside a torch.save file comes from it).
                    let dir = tmp.path + "/\(piece)-\(direct)"
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    let output = dir + "/out.\(format == .torchSave ? "pt" : "safetensors")"
                    let report = try await Consolidator(engine: engine, pieceBytes: piece, options: CheckpointOptions(direct: direct))
                        .consolidate(Fixtures.path(name), to: output, format: format)
                    #expect(report.fileBytes == (try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int))
                    outputs.append(Array(try Data(contentsOf: URL(fileURLWithPath: output))))
                    if direct { streamed.append(report.streamed) } else { #expect(!report.streamed) }
                }
            }
            // A budget of a few windows can be too small for the layout (four files live at
            // once): the batch path then runs, with the same result.
            #expect(streamed.last == true, "\(name) \(format): the streaming path was not taken")
            #expect(Set(outputs).count == 1, "\(name) \(format): outputs differ by path or piece size")
        }
    }

    /// Progress of a streamed consolidation (output bytes scaled to tensor bytes) for files far
    /// past the 3 GiB at which `done * target` overflowed.
    @Test func progressScalesWithoutOverflow() {
        let tib = 1 << 40
        #expect(Consolidator.scaled(0, of: 3 * tib, to: 3 * tib - 10) == 0)
        #expect(Consolidator.scaled(3 * tib / 2, of: 3 * tib, to: 3 * tib) == 3 * tib / 2)
        #expect(Consolidator.scaled(3 << 30, of: 4 << 30, to: 4 << 30) == 3 << 30)
        #expect(Consolidator.scaled(5, of: 4, to: 100) == 100)
        #expect(Consolidator.scaled(1, of: 0, to: 100) == 0)
        #expect(Consolidator.scaled(Int.max - 1, of: Int.max, to: Int.max) == Int.max - 1)
    }

    /// A checkpoint of values only (no storage to stream): both paths write the same archive of
    /// the values, and a safetensors file of its header alone.
    @Test func valuesOnlyCheckpointStreams() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = tmp.path + "/ck"
        var state = StateDict()
        state.set("step", path: [.key("step")], .value(.int(7)))
        state.set("name", path: [.key("name")], .value(.string("values only")))
        let saved = state
        _ = try await onRanks(1) { comm in
            try await Checkpointer(engine: engine, communicator: comm, options: CheckpointOptions(direct: false)).save(saved, to: dir)
        }
        for format in [ConsolidationFormat.torchSave, .safetensors] {
            var outputs: [[UInt8]] = []
            for direct in [true, false] {
                let sub = tmp.path + "/\(format)-\(direct)"
                try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
                let output = sub + "/out"
                let report = try await Consolidator(engine: engine, options: CheckpointOptions(direct: direct))
                    .consolidate(dir, to: output, format: format)
                #expect(report.streamed == direct && report.tensorCount == 0)
                outputs.append(Array(try Data(contentsOf: URL(fileURLWithPath: output))))
            }
            #expect(outputs[0] == outputs[1], "\(format): the paths differ")
            if format == .torchSave {
                let file = try TorchSaveFile(parsing: outputs[0])
                #expect("\(file.value)".contains("values only"))
            }
        }
    }

    /// Random chunk grids (blocks cut along any dimension, replicated tensors, empty blocks, ranks
    /// without any): the streaming path gives the same file as the batch path, with every tensor.
    @Test(arguments: 1...10)
    func randomLayoutsStreamLikeTheBatchPath(seed: Int) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = tmp.path + "/ck"
        let tensors = try await ToolTest.engineCheckpoint(dir, world: 2 + seed % 3, seed: UInt64(seed) &* 7919, engine: engine)
        for format in [ConsolidationFormat.torchSave, .safetensors] {
            var outputs: [[UInt8]] = []
            for direct in [true, false] {
                let sub = tmp.path + "/\(direct)"
                try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
                let output = sub + "/out.\(format == .torchSave ? "pt" : "safetensors")"
                let report = try await Consolidator(engine: engine, options: CheckpointOptions(direct: direct))
                    .consolidate(dir, to: output, format: format)
                #expect(report.streamed == direct)
                outputs.append(Array(try Data(contentsOf: URL(fileURLWithPath: output))))
                if format == .torchSave { try ToolTest.expectMatches(try ToolTest.torchSaveTensors(output), tensors) }
            }
            #expect(outputs[0] == outputs[1], "seed \(seed) \(format): the paths differ")
        }
    }

    /// Storages start at 4096-byte boundaries (they are written straight from the buffers they
    /// were read into), the file is exactly the length computed before writing (reserved up
    /// front, nothing trimmed), and the tensors are right whatever the piece size.
    @Test(arguments: [1 << 16, 3 << 16, 64 << 20])
    func storagesAreAlignedAndTheLengthIsKnownBeforehand(piece: Int) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = tmp.path + "/ck"
        let tensors = try await ToolTest.engineCheckpoint(dir, world: 3, seed: 21, engine: engine, big: true)
        let output = tmp.path + "/out.pt"
        let report = try await Consolidator(engine: engine, pieceBytes: piece).consolidate(dir, to: output, format: .torchSave)
        let bytes = try ToolTest.bytes(output)
        #expect(report.fileBytes == bytes.count)
        let file = try bytes.withUnsafeBytes { try TorchSaveFile(parsing: $0) }
        for storage in file.storages where !storage.byteRange.isEmpty {
            #expect(storage.byteRange.lowerBound % 4096 == 0, "storage \(storage.key) at \(storage.byteRange)")
        }
        // The length computed from the layout alone is the length of the archive written.
        let writer = try TorchSaveWriter(value: file.value, archiveName: "x", alignment: 4096)
        let payloads = file.storages.map { Array(bytes[$0.byteRange]) }
        let encoded = try TorchSaveWriter.encode(file.value, payloads: payloads, archiveName: "x", alignment: 4096)
        #expect(try Consolidator.archiveLength(writer) == encoded.count)
        try ToolTest.expectMatches(try ToolTest.torchSaveTensors(output), tensors)
    }

    /// Many small tensors keep torch.save's 64-byte alignment (4096 would pad each by up to
    /// 4 KiB); large ones get 4096 once the padding is within 1% of the bytes.
    @Test func smallTensorsKeepTorchAlignment() async throws {
        #expect(Consolidator.storageAlignment(storages: 10_000, bytes: 100 << 20) == 64)
        #expect(Consolidator.storageAlignment(storages: 492, bytes: 1 << 30) == 4096)
        #expect(Consolidator.storageAlignment(storages: 0, bytes: 0) == 4096)
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = tmp.path + "/ck"
        let tensors = try await ToolTest.engineCheckpoint(dir, world: 2, seed: 4, engine: engine)
        let output = tmp.path + "/small.pt"
        let report = try await Consolidator(engine: engine).consolidate(dir, to: output, format: .torchSave)
        let bytes = try ToolTest.bytes(output)
        let file = try bytes.withUnsafeBytes { try TorchSaveFile(parsing: $0) }
        let alignment = file.archive.entries.first { $0.name.hasSuffix("/.storage_alignment") }
            .map { String(decoding: bytes[$0.payloadRange], as: UTF8.self) }
        #expect(alignment == "64")
        #expect(report.fileBytes < 8192, "\(report.fileBytes) bytes for \(report.tensorBytes) of tensors")
        try ToolTest.expectMatches(try ToolTest.torchSaveTensors(output), tensors)
    }

    /// `blocks` over random shapes: C-order, contiguous, covering the tensor once, each at most
    /// `maxBytes` (or one element), and, where a multiple of the granule fits, every block but
    /// the last a multiple of it.
    @Test func blocksTileTensorsInOrderWithTheGranule() {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<2000 {
            let rank = Int.random(in: 1...3, using: &rng)
            let shape = (0..<rank).map { _ in Int.random(in: 1...40, using: &rng) }
            let element = [1, 2, 4, 8].randomElement(using: &rng) ?? 4
            let maxBytes = Int.random(in: 1...6000, using: &rng)
            let granule = [1, 512, 4096].randomElement(using: &rng) ?? 1
            let blocks = Consolidator.blocks(shape: shape, elementSize: element, maxBytes: maxBytes, granule: granule)
            var strides = [Int](repeating: 1, count: rank)
            for d in stride(from: rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
            var next = 0
            for block in blocks {
                let start = zip(block.offsets, strides).reduce(0) { $0 + $1.0 * $1.1 }
                let count = block.sizes.reduce(1, *)
                #expect(start == next, "\(shape) \(maxBytes): block at \(start), expected \(next)")
                // A C-contiguous box: ones, then a partial dimension, then full dimensions.
                if let k = block.sizes.firstIndex(where: { $0 != 1 }) {
                    #expect(Array(block.sizes[(k + 1)...]) == Array(shape[(k + 1)...]), "\(shape): \(block.sizes)")
                }
                #expect(count * element <= maxBytes || count == 1, "\(shape) \(maxBytes): \(count * element) bytes")
                next = start + count
            }
            #expect(next == shape.reduce(1, *), "\(shape): covered \(next)")
            let row = shape.dropFirst().reduce(element, *)
            if row <= maxBytes, granule / Consolidator.gcd(row, granule) <= maxBytes / row {
                for block in blocks.dropLast() {
                    #expect(block.sizes.reduce(element, *) % granule == 0, "\(shape) \(maxBytes) \(granule): \(block.sizes)")
                }
            }
        }
    }

    @Test func memoryStaysBoundedByThePiece() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()  // pool: 8 x 64 KiB
        defer { Task { await engine.shutdown() } }
        let dir = tmp.path + "/ck"
        let tensors = try await ToolTest.engineCheckpoint(dir, world: 3, seed: 9, engine: engine, big: true)
        let output = tmp.path + "/out.pt"
        let report = try await Consolidator(engine: engine, pieceBytes: 1 << 16).consolidate(dir, to: output, format: .torchSave)
        #expect(report.peakWorkingBytes <= 1 << 20, "peak \(report.peakWorkingBytes) for a 4 MiB tensor")
        try ToolTest.expectMatches(try ToolTest.torchSaveTensors(output), tensors)
    }
}

@Suite struct ReshardTests {
    @Test(arguments: ["a_4rank_shard0", "c_4rank_uneven_empty", "d_1rank_nested", "e_2rank_safetensors", "g_lightning_fsdp_sharded"])
    func reshardedFixtureKeepsEveryTensorAndValue(name: String) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let originalValues = try await ToolTest.checkpointValues(Fixtures.path(name), engine: engine)
        for ranks in [1, 3] {
            let out = tmp.path + "/r\(ranks)"
            let report = try await Resharder(engine: engine, pieceBytes: 1 << 16).reshard(Fixtures.path(name), to: out, layout: .rowSplit(ranks: ranks))
            #expect(report.ranks == ranks)
            try ToolTest.expectMatchesManifest(try await ToolTest.checkpointTensors(out, engine: engine), fixture: name)
            #expect(try await ToolTest.checkpointValues(out, engine: engine) == originalValues)
            let verified = try await CheckpointVerifier(engine: engine).verify(out)
            #expect(verified.isValid && verified.hasChecksums, "\(verified.problems)")
            // Row layout: every chunk of a tensor with rows starts at a multiple of ceil(rows/ranks).
            let metadata = try await CheckpointReader(directory: out, engine: engine).metadata
            for (fqn, entry) in metadata.stateDictMetadata.entries {
                guard case .tensor(let t) = entry, let rows = t.size.first, rows > 0 else { continue }
                let step = (rows + ranks - 1) / ranks
                #expect(t.chunks.map { $0.offsets[0] } == Array(stride(from: 0, to: rows, by: step)), "\(fqn)")
                #expect(t.chunks.allSatisfy { Array($0.sizes.dropFirst()) == Array(t.size.dropFirst()) })
                for (i, chunk) in t.chunks.enumerated() {
                    #expect(metadata.storage(fqn: fqn, offsets: chunk.offsets)?.relativePath == "__\(i)_0.distcp")
                }
            }
            // The planner_data (nesting) is kept.
            let original = try await CheckpointReader(directory: Fixtures.path(name), engine: engine).metadata
            for (fqn, _) in original.stateDictMetadata.entries {
                #expect(metadata.plannerData?[fqn] == (original.plannerData?[fqn] ?? [.key(fqn)]))
            }
        }
    }

    @Test func likeTemplateCopiesTheLayout() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let source = tmp.path + "/src"
        let template = tmp.path + "/tpl"
        let tensors = try await ToolTest.engineCheckpoint(source, world: 2, seed: 21, engine: engine, big: true)
        _ = try await ToolTest.engineCheckpoint(template, world: 4, seed: 22, engine: engine, big: true)
        let out = tmp.path + "/out"
        let report = try await Resharder(engine: engine, pieceBytes: 1 << 16).reshard(source, to: out, layout: .like(template: template))
        #expect(report.peakWorkingBytes <= 1 << 20)
        try ToolTest.expectMatches(try await ToolTest.checkpointTensors(out, engine: engine), tensors)
        let a = try await CheckpointReader(directory: out, engine: engine).metadata
        let b = try await CheckpointReader(directory: template, engine: engine).metadata
        for (fqn, entry) in b.stateDictMetadata.entries {
            guard case .tensor(let t) = entry, case .tensor(let u)? = a.stateDictMetadata[fqn] else { continue }
            #expect(Set(t.chunks) == Set(u.chunks), "\(fqn)")
            for chunk in t.chunks {
                #expect(ToolPaths.rank(ofDataFile: a.storage(fqn: fqn, offsets: chunk.offsets)?.relativePath ?? "")
                    == ToolPaths.rank(ofDataFile: b.storage(fqn: fqn, offsets: chunk.offsets)?.relativePath ?? ""))
            }
        }
        // A template whose shapes differ is refused.
        let odd = tmp.path + "/odd"
        var state = StateDict()
        state.set("model.w", .tensor(.whole(dtype: .float32, shape: [3, 3], buffer: TensorBuffer(byteCount: 36))))
        let oddState = state
        _ = try await onRanks(1) { comm in
            try await Checkpointer(engine: engine, communicator: comm, options: CheckpointOptions(direct: false)).save(oddState, to: odd)
        }
        await #expect(throws: CheckpointError.self) {
            _ = try await Resharder(engine: engine).reshard(source, to: tmp.path + "/bad", layout: .like(template: odd))
        }
        #expect(!ToolTest.exists(tmp.path + "/bad"))
    }

    @Test func rowSplitIsTorchChunk() {
        let chunks = Resharder.rowSplit(shape: [10, 3], ranks: 4)
        #expect(chunks.map(\.offsets) == [[0, 0], [3, 0], [6, 0], [9, 0]])
        #expect(chunks.map(\.sizes) == [[3, 3], [3, 3], [3, 3], [1, 3]])
        #expect(Resharder.rowSplit(shape: [5], ranks: 4).map(\.sizes) == [[2], [2], [1]])  // torch.chunk: 3 chunks
        #expect(Resharder.rowSplit(shape: [], ranks: 4).map(\.rank) == [0])
        #expect(Resharder.rowSplit(shape: [0, 2], ranks: 4).map(\.sizes) == [[0, 2]])
    }
}

@Suite struct ConvertTests {
    @Test(arguments: [1, 2, 5])
    func torchSaveFileConverts(ranks: Int) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let out = tmp.path + "/out"
        let input = Fixtures.path("f_consolidated/a_4rank_shard0.pt")
        let report = try await CheckpointConverter(engine: engine, pieceBytes: 1 << 16).convert(input, to: out, ranks: ranks)
        #expect(report.inputFormat == "torch" && report.valueCount == 5)
        try ToolTest.expectMatchesManifest(try await ToolTest.checkpointTensors(out, engine: engine), fixture: "a_4rank_shard0")
        #expect(try await ToolTest.checkpointValues(out, engine: engine)
            == (try await ToolTest.checkpointValues(Fixtures.path("a_4rank_shard0"), engine: engine)))
        // Flattened as dcp.save flattens: same fqns and planner_data as PyTorch's own checkpoint.
        let ours = try await CheckpointReader(directory: out, engine: engine).metadata
        let torch = try await CheckpointReader(directory: Fixtures.path("a_4rank_shard0"), engine: engine).metadata
        #expect(Set(ours.stateDictMetadata.keys) == Set(torch.stateDictMetadata.keys))
        for fqn in torch.stateDictMetadata.keys { #expect(ours.plannerData?[fqn] == torch.plannerData?[fqn], "\(fqn)") }
        #expect((try await CheckpointVerifier(engine: engine).verify(out)).isValid)
    }

    @Test func nestedStateWithListsConverts() async throws {
        // d_1rank_nested consolidated by us (nested dicts and lists), then converted back.
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let pt = tmp.path + "/d.pt"
        _ = try await Consolidator(engine: engine).consolidate(Fixtures.path("d_1rank_nested"), to: pt, format: .torchSave)
        let out = tmp.path + "/out"
        _ = try await CheckpointConverter(engine: engine).convert(pt, to: out, ranks: 2)
        try ToolTest.expectMatchesManifest(try await ToolTest.checkpointTensors(out, engine: engine), fixture: "d_1rank_nested")
        let ours = try await CheckpointReader(directory: out, engine: engine).metadata
        let torch = try await CheckpointReader(directory: Fixtures.path("d_1rank_nested"), engine: engine).metadata
        #expect(ours.stateDictMetadata.keys == torch.stateDictMetadata.keys)
        for fqn in torch.stateDictMetadata.keys { #expect(ours.plannerData?[fqn] == torch.plannerData?[fqn], "\(fqn)") }
        #expect(try await ToolTest.checkpointValues(out, engine: engine)
            == (try await ToolTest.checkpointValues(Fixtures.path("d_1rank_nested"), engine: engine)))
    }

    @Test func safetensorsFileConverts() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let out = tmp.path + "/out"
        let report = try await CheckpointConverter(engine: engine).convert(Fixtures.path("f_consolidated/a_4rank_shard0.safetensors"), to: out, ranks: 3)
        #expect(report.inputFormat == "safetensors" && report.valueCount == 0)
        let got = try await ToolTest.checkpointTensors(out, engine: engine)
        let fixture = try #require(try Fixtures.manifest().first { $0.name == "a_4rank_shard0" })
        for t in fixture.tensors { #expect(got[t.fqn]?.sha == t.sha256, "\(t.fqn)") }
    }

    @Test func largeTensorStreamsThroughSmallPiece() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = tmp.path + "/ck"
        let tensors = try await ToolTest.engineCheckpoint(dir, world: 2, seed: 31, engine: engine, big: true)
        let pt = tmp.path + "/ck.pt"
        _ = try await Consolidator(engine: engine, pieceBytes: 1 << 16).consolidate(dir, to: pt, format: .torchSave)
        let out = tmp.path + "/out"
        let report = try await CheckpointConverter(engine: engine, pieceBytes: 1 << 16).convert(pt, to: out, ranks: 3)
        #expect(report.peakWorkingBytes <= 1 << 20)
        try ToolTest.expectMatches(try await ToolTest.checkpointTensors(out, engine: engine), tensors)
    }
}
