import Ckpt
import CkptFormat
import CkptIO
import Foundation

/// The single-file way: the full state gathered on rank 0, then written as one torch.save file.
///
/// Gather: for each bucket of tensors, every rank serializes its shards' bytes into a payload and
/// sends it through the ``Communicator`` (``InProcessGroup`` hands payloads over as a network
/// would); rank 0 allocates the full tensors and copies each rank's rows into place (a "full"
/// state dict, as FSDP's `FULL_STATE_DICT` builds it). Write: rank 0 streams a torch.save archive
/// (``TorchSaveWriter``, 64-byte aligned storages, CRC-32 of every record as torch.save computes
/// it) through the I/O engine, then fsyncs; the other ranks wait at a barrier.
enum SingleFileBaseline {
    /// Runs one rank's part. Returns (gather seconds, write seconds, file bytes) on rank 0 and
    /// zeros elsewhere.
    static func run(
        rank: Int, communicator: any Communicator, states: [RankState],
        placements: [[String: RankState.Placement]], tensors: [BenchTensor], buckets: [Range<Int>],
        values: [String: BenchValue], engine: IOEngine, output: String, direct: Bool
    ) async throws -> (Double, Double, Int) {
        let start = ContinuousClock.now
        let mine = placements[rank]
        let arena = states[rank].arena.bytes
        var full: [TensorBuffer] = []
        if rank == 0 { full.reserveCapacity(tensors.count) }
        for bucket in buckets {
            // Send: this rank's shards of the bucket, concatenated in tensor order.
            var size = 0
            for index in bucket { size += mine[tensors[index].fqn]?.chunk.byteCount ?? 0 }
            let payload = [UInt8](unsafeUninitializedCapacity: size) { out, count in
                var cursor = 0
                for index in bucket {
                    guard let placement = mine[tensors[index].fqn], placement.chunk.byteCount > 0,
                        let to = out.baseAddress, let from = arena.baseAddress
                    else { continue }
                    (UnsafeMutableRawPointer(to) + cursor).copyMemory(
                        from: from + placement.offset, byteCount: placement.chunk.byteCount)
                    cursor += placement.chunk.byteCount
                }
                count = cursor
            }
            guard let received = try await communicator.gather(payload, root: 0) else { continue }
            // Rank 0: assemble the full tensors (row shards: contiguous ranges of the full tensor).
            var cursors = [Int](repeating: 0, count: received.count)
            for index in bucket {
                let tensor = tensors[index]
                let buffer = TensorBuffer(uninitializedByteCount: tensor.byteCount)
                let rowBytes = tensor.shape.isEmpty ? tensor.byteCount : tensor.byteCount / max(1, tensor.shape[0])
                for (source, bytes) in received.enumerated() {
                    guard let placement = placements[source][tensor.fqn] else { continue }
                    let n = placement.chunk.byteCount
                    let at = (placement.chunk.offsets.first ?? 0) * rowBytes
                    guard n > 0, at + n <= buffer.count, cursors[source] + n <= bytes.count else {
                        throw BenchRunError.scenarioFailed(
                            scenario: "single-file gather", underlying: "payload of rank \(source) too short for \(tensor.fqn)")
                    }
                    bytes.withUnsafeBytes { raw in
                        if let to = buffer.bytes.baseAddress, let from = raw.baseAddress {
                            (to + at).copyMemory(from: from + cursors[source], byteCount: n)
                        }
                    }
                    cursors[source] += n
                }
                full.append(buffer)
            }
        }
        let gathered = ContinuousClock.now
        guard rank == 0 else {
            try await communicator.barrier()
            return (0, 0, 0)
        }
        var fileBytes = 0
        do {
            fileBytes = try await write(
                tensors: tensors, full: full, values: values, engine: engine, output: output, direct: direct)
        } catch {
            try? await communicator.barrier()
            throw error
        }
        let wrote = ContinuousClock.now
        try await communicator.barrier()
        return (runSeconds(gathered - start), runSeconds(wrote - gathered), fileBytes)
    }

    /// The torch.save value: a flat dict `{fqn: tensor}` in workload order, then the values.
    static func value(tensors: [BenchTensor], values: [String: BenchValue]) -> TorchValue {
        var entries: [TorchValue.Entry] = tensors.map { tensor in
            TorchValue.Entry(
                .string(tensor.fqn),
                .tensor(TensorReference(storageKey: tensor.fqn, dtype: tensor.dtype.dtype, shape: tensor.shape)))
        }
        for key in values.keys.sorted() {
            if let value = values[key] { entries.append(TorchValue.Entry(.string(key), value.torchValue)) }
        }
        return .dict(entries)
    }

    /// Streams the archive; returns its length.
    static func write(
        tensors: [BenchTensor], full: [TensorBuffer], values: [String: BenchValue], engine: IOEngine,
        output: String, direct: Bool
    ) async throws -> Int {
        var writer = try TorchSaveWriter(value: value(tensors: tensors, values: values), archiveName: "single-file")
        guard writer.storages.count == full.count else {
            throw BenchRunError.scenarioFailed(
                scenario: "single-file write", underlying: "\(writer.storages.count) storages for \(full.count) tensors")
        }
        let file = try engine.open(output, mode: .write(create: true, truncate: true), direct: direct)
        let out = RecordFileWriter(engine: engine, file: file)
        do {
            try await out.append(try writer.start())
            for (index, storage) in writer.storages.enumerated() {
                let buffer = full[index]
                guard storage.byteCount == buffer.count else {
                    throw BenchRunError.scenarioFailed(
                        scenario: "single-file write",
                        underlying: "storage \(storage.key) has \(storage.byteCount) bytes, tensor \(buffer.count)")
                }
                try await out.append(try writer.beginStorage())
                let bytes = UnsafeRawBufferPointer(buffer.bytes)
                try await out.append(bytes)
                try await out.append(try writer.endStorage(crc32: crc32(bytes)))
            }
            try await out.append(try writer.finish())
            let length = try await out.finish()
            try await engine.fsync(file)
            try engine.close(file)
            return length
        } catch {
            await out.abandon()
            try? engine.close(file)
            throw error
        }
    }
}
