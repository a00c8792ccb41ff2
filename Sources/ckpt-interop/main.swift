// ckpt-interop: the Swift side of scripts/interop (round trips with real PyTorch). Not a user tool.
//
//   ckpt-interop read DIR --out FILE.pt|FILE.safetensors   consolidate a DCP checkpoint (library Consolidator)
//   ckpt-interop write-dcp SOURCE.pt LAYOUT.json OUT_DIR    save the tensors/values of a torch.save file as a
//                                                          DCP checkpoint from the ranks and chunk layout given
//   ckpt-interop load DIR RANKS AXIS OUT.safetensors        load on RANKS in-process ranks, each asking for its
//                                                          torch.chunk slice along AXIS (resharding), then
//                                                          write the reassembled tensors for comparison
import Ckpt
import CkptFormat
import CkptIO
import CkptPlan
import Foundation

struct Layout: Decodable {
    struct Chunk: Decodable {
        var rank: Int
        var offsets: [Int]
        var sizes: [Int]
    }
    var world_size: Int
    var tensors: [String: [Chunk]]
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("ckpt-interop: " + message + "\n").utf8))
    exit(1)
}

/// Contiguous runs of a block inside a tensor of `shape`: (source byte offset, length) in block order.
func rows(shape: [Int], offsets: [Int], sizes: [Int], elementSize: Int) -> [(Int, Int)] {
    var out: [(Int, Int)] = []
    ChunkBox(offsets: offsets, sizes: sizes).forEachContiguousRun(inTensorOfShape: shape, elementSize: elementSize) {
        out.append(($0, $2))
        return true
    }
    return out
}

func writeDCP(source: String, layoutPath: String, out: String) async throws {
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: source)))
    let file = try TorchSaveFile(parsing: bytes)
    let layout = try JSONDecoder().decode(Layout.self, from: Data(contentsOf: URL(fileURLWithPath: layoutPath)))
    guard case .dict(let entries) = file.value else { fail("\(source) does not hold a dict") }
    var states = Array(repeating: StateDict(), count: layout.world_size)
    for entry in entries {
        guard case .string(let fqn) = entry.key else { fail("non-string key in \(source)") }
        switch entry.value {
        case .tensor(let t):
            guard let storage = file.storage(t.storageKey), t.isContiguous else { fail("tensor \(fqn) is not contiguous") }
            let start = storage.byteRange.lowerBound + t.storageOffset * t.dtype.itemSize
            guard let chunks = layout.tensors[fqn] else { fail("no layout for \(fqn)") }
            for chunk in chunks {
                let n = chunk.sizes.reduce(1, *) * t.dtype.itemSize
                let buffer = TensorBuffer(byteCount: n)
                var at = 0
                for (offset, length) in rows(shape: t.shape, offsets: chunk.offsets, sizes: chunk.sizes, elementSize: t.dtype.itemSize) {
                    for i in 0..<length { buffer.bytes[at + i] = bytes[start + offset + i] }
                    at += length
                }
                var existing: [TensorChunk] = []
                if case .tensor(let e)? = states[chunk.rank][fqn] { existing = e.chunks }
                states[chunk.rank].set(fqn, .tensor(TensorEntry(
                    dtype: t.dtype, globalShape: t.shape,
                    chunks: existing + [TensorChunk(offsets: chunk.offsets, sizes: chunk.sizes, buffer: buffer)])))
            }
        default:
            for r in 0..<layout.world_size { states[r].set(fqn, .value(entry.value)) }
        }
    }
    let engine = try IOEngine()
    let group = InProcessGroup(worldSize: layout.world_size)
    let frozen = states
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        for rank in 0..<layout.world_size {
            tasks.addTask {
                let checkpointer = Checkpointer(engine: engine, communicator: group.communicator(rank: rank))
                _ = try await checkpointer.save(frozen[rank], to: out)
            }
        }
        try await tasks.waitForAll()
    }
    await engine.shutdown()
}

func read(directory: String, out: String) async throws {
    let engine = try IOEngine()
    let format: ConsolidationFormat = out.hasSuffix(".safetensors") ? .safetensors : .torchSave
    var options = CheckpointOptions()
    options.verifyChecksums = FileManager.default.fileExists(atPath: directory + "/" + Checkpointer.checksumFileName)
    _ = try await Consolidator(engine: engine, options: options).consolidate(directory, to: out, format: format, overwrite: true)
    await engine.shutdown()
}

func reshardedLoad(directory: String, ranks: Int, axis: Int, out: String) async throws {
    let engine = try IOEngine()
    let metadata = try await CheckpointReader(directory: directory, engine: engine).metadata
    var tensors: [(fqn: String, dtype: DType, shape: [Int])] = []
    for (fqn, entry) in metadata.stateDictMetadata.entries {
        if case .tensor(let t) = entry, t.properties.dtype.safetensorsName != nil { tensors.append((fqn, t.properties.dtype, t.size)) }
    }
    // Each rank's slice of each tensor, torch.chunk style along `axis` (dim 0 for 1-d and 0-d).
    var states = Array(repeating: StateDict(), count: ranks)
    var slices: [[(offsets: [Int], sizes: [Int], buffer: TensorBuffer)]] = Array(repeating: [], count: tensors.count)
    for (t, tensor) in tensors.enumerated() {
        for rank in 0..<ranks {
            var offsets = Array(repeating: 0, count: tensor.shape.count), sizes = tensor.shape
            if !tensor.shape.isEmpty {
                let d = axis < tensor.shape.count ? axis : 0
                let n = tensor.shape[d], step = (n + ranks - 1) / ranks
                offsets[d] = min(rank * step, n)
                sizes[d] = min(step, n - offsets[d])
            }
            let buffer = TensorBuffer(byteCount: sizes.reduce(1, *) * tensor.dtype.itemSize)
            slices[t].append((offsets, sizes, buffer))
            states[rank].set(tensor.fqn, .tensor(TensorEntry(dtype: tensor.dtype, globalShape: tensor.shape, chunks: [
                TensorChunk(offsets: offsets, sizes: sizes, buffer: buffer),
            ])))
        }
    }
    let group = InProcessGroup(worldSize: ranks)
    let frozen = states
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        for rank in 0..<ranks {
            tasks.addTask {
                _ = try await Checkpointer(engine: engine, communicator: group.communicator(rank: rank)).load(into: frozen[rank], from: directory)
            }
        }
        try await tasks.waitForAll()
    }
    // Reassemble and write a safetensors file.
    let header = try SafetensorsHeader.encode(tensors: tensors.map { ($0.fqn, $0.dtype, $0.shape) })
    var data = header.bytes
    for (t, tensor) in tensors.enumerated() {
        var global = [UInt8](repeating: 0, count: tensor.shape.reduce(1, *) * tensor.dtype.itemSize)
        for slice in slices[t] {
            var at = 0
            for (offset, length) in rows(shape: tensor.shape, offsets: slice.offsets, sizes: slice.sizes, elementSize: tensor.dtype.itemSize) {
                for i in 0..<length { global[offset + i] = slice.buffer.bytes[at + i] }
                at += length
            }
        }
        data += global
    }
    try Data(data).write(to: URL(fileURLWithPath: out))
    await engine.shutdown()
}

let args = Array(CommandLine.arguments.dropFirst())
do {
    switch args.first {
    case "read" where args.count == 4 && args[2] == "--out":
        try await read(directory: args[1], out: args[3])
    case "load" where args.count == 5:
        guard let ranks = Int(args[2]), ranks > 0, let axis = Int(args[3]) else { fail("load DIR RANKS AXIS OUT") }
        try await reshardedLoad(directory: args[1], ranks: ranks, axis: axis, out: args[4])
    case "write-dcp" where args.count == 4:
        try await writeDCP(source: args[1], layoutPath: args[2], out: args[3])
    default:
        fail("usage: ckpt-interop read DIR --out FILE | write-dcp SOURCE.pt LAYOUT.json OUT_DIR | load DIR RANKS AXIS OUT")
    }
} catch {
    fail("\(error)")
}
