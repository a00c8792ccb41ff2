import CCkptHash
import CkptFormat
import CkptPlan

/// The bytes of a consolidated file that are not tensor bytes, produced in file order while the
/// images pass: a torch.save archive's zip headers (each storage's CRC-32 is computed from the
/// image bytes as they go by), or a safetensors header.
struct OutputGlue {
    private var writer: TorchSaveWriter?
    private let layout: Consolidator.OutputLayout
    private var storage = 0
    private var crc: UInt32 = 0
    /// Produced bytes not yet placed, at their file offsets.
    private var pending: [(at: Int, bytes: [UInt8])] = []

    /// A torch.save archive.
    init(torchSave writer: TorchSaveWriter, layout: Consolidator.OutputLayout) throws {
        var w = writer
        var head = try w.start()
        head += layout.dataOffsets.isEmpty ? try w.finish() : try w.beginStorage()
        self.writer = w
        self.layout = layout
        try place(head, at: 0, before: layout.dataOffsets.first ?? layout.length)
    }

    /// A safetensors file: its header, then the tensors.
    init(safetensorsHeader header: [UInt8], layout: Consolidator.OutputLayout) throws {
        self.layout = layout
        try place(header, at: 0, before: layout.dataOffsets.first ?? layout.length)
    }

    private mutating func place(_ bytes: [UInt8], at offset: Int, before end: Int) throws {
        guard offset + bytes.count == end else {
            throw CheckpointError(
                .protocolViolation, "internal error: \(bytes.count) header bytes at offset \(offset), the layout has \(end - offset)")
        }
        if !bytes.isEmpty { pending.append((offset, bytes)) }
    }

    /// Fills `image`'s bytes that are not tensor bytes (after the tensor bytes are in place).
    mutating func fill(image: StreamCopyPlan.Image, bytes: UnsafeMutableRawBufferPointer) throws {
        let start = image.offset
        let end = image.offset + image.length
        if writer != nil {
            while storage < layout.dataOffsets.count, layout.dataOffsets[storage] < end {
                let dataStart = layout.dataOffsets[storage]
                let dataEnd = dataStart + layout.dataLengths[storage]
                let from = max(start, dataStart)
                let to = min(end, dataEnd)
                if to > from {
                    crc = ckpt_crc32_update(crc, bytes.baseAddress.map { $0 + (from - start) }, to - from)
                }
                if dataEnd > end { break }
                try finishStorage(at: dataEnd)
            }
        }
        var kept: [(at: Int, bytes: [UInt8])] = []
        for (at, glue) in pending {
            let from = max(start, at)
            let to = min(end, at + glue.count)
            if to > from {
                glue.withUnsafeBytes {
                    UnsafeMutableRawBufferPointer(rebasing: bytes[(from - start)..<(to - start)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[(from - at)..<(to - at)]))
                }
            }
            if at + glue.count > end { kept.append((at, glue)) }
        }
        pending = kept
    }

    /// The zip bytes after storage `storage`, whose bytes end at `dataEnd`.
    private mutating func finishStorage(at dataEnd: Int) throws {
        guard var w = writer else { return }
        var bytes = try w.endStorage(crc32: crc)
        storage += 1
        crc = 0
        let next = storage < layout.dataOffsets.count ? layout.dataOffsets[storage] : layout.length
        bytes += storage < layout.dataOffsets.count ? try w.beginStorage() : try w.finish()
        writer = w
        try place(bytes, at: dataEnd, before: next)
    }

    /// Checks every byte was placed.
    func finish() throws {
        guard pending.isEmpty, writer == nil || storage == layout.dataOffsets.count else {
            throw CheckpointError(
                .protocolViolation, "internal error: consolidation ended with \(pending.count) header pieces unplaced, at storage \(storage)")
        }
    }
}
