import CkptFormat
@testable import CkptIO
import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

/// O_DIRECT loads merge neighbouring reads of a file into vectored spans (payloads straight into
/// tensor memory, headers, small records and unaligned tails through scratch memory): fewer,
/// larger requests, the same bytes, and no byte read that is not needed apart from headers.
/// Saves batch a file's consecutive writes into vectored writes the same way.
@Suite struct SpanReadTests {
    /// Tensors of mixed sizes, saved in this order: payloads >= 256 KiB go direct at 4096-aligned
    /// offsets (some with lengths that are not multiples of 4096), smaller ones are packed.
    static let shapes: [(String, [Int])] = [
        ("a", [257, 301]), ("b", [8, 8]), ("c", [512, 256]), ("d", [3, 5]), ("e", [300, 301]),
        ("f", [1024, 200]), ("g", [17]), ("h", [129, 1031]), ("i", [4, 4]), ("j", [640, 256]),
    ]

    static func tensors(seed: UInt64) -> [GlobalTensor] {
        var rng = SplitMix64(seed: seed)
        return shapes.map { GlobalTensor(fqn: $0.0, dtype: .float32, shape: $0.1, rng: &rng) }
    }

    /// Loads every tensor in `ranks` row blocks; returns each rank's report and checks every byte.
    static func load(_ tensors: [GlobalTensor], ranks: Int, path: String, engine: IOEngine) async throws -> [LoadReport] {
        var outs: [[TensorBuffer]] = []
        var rowRanges: [[Range<Int>]] = []
        for t in tensors {
            let rows = t.shape[0]
            let ranges = (0..<ranks).map { r in (rows * r / ranks)..<(rows * (r + 1) / ranks) }
            let rowBytes = t.shape.dropFirst().reduce(4, *)
            rowRanges.append(ranges)
            outs.append(ranges.map { TensorBuffer(byteCount: $0.count * rowBytes) })
        }
        let buffers = outs
        let ranges = rowRanges
        let reports = try await onRanks(ranks) { comm in
            var request = StateDict()
            for (k, t) in tensors.enumerated() {
                let range = ranges[k][comm.rank]
                var offsets = Array(repeating: 0, count: t.shape.count)
                offsets[0] = range.lowerBound
                var sizes = t.shape
                sizes[0] = range.count
                request.set(t.fqn, .tensor(TensorEntry(dtype: .float32, globalShape: t.shape, chunks: [
                    TensorChunk(offsets: offsets, sizes: sizes, buffer: buffers[k][comm.rank]),
                ])))
            }
            return try await Checkpointer(engine: engine, communicator: comm).load(into: request, from: path)
        }
        for (k, t) in tensors.enumerated() {
            let rowBytes = t.shape.dropFirst().reduce(4, *)
            for (r, range) in ranges[k].enumerated() {
                let expected = Array(t.bytes[(range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)])
                #expect(Array(buffers[k][r].bytes) == expected, "\(t.fqn) rank \(r) of \(ranks)")
            }
        }
        return reports
    }

    @Test func neighbouringRecordsAreReadInFewVectoredSpans() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        // 4 MiB blocks: spans of up to 4 MiB.
        let engine = try makeEngine(bufferSize: 4 << 20, bufferCount: 8)
        let tensors = Self.tensors(seed: 31)
        let path = dir.path + "/ckpt"
        var state = StateDict()
        for t in tensors {
            let buffer = TensorBuffer(byteCount: t.bytes.count)
            buffer.bytes.copyBytes(from: t.bytes)
            state.set(t.fqn, .tensor(.whole(dtype: .float32, shape: t.shape, buffer: buffer)))
        }
        let saved = state
        let writesBefore = engine.syscalls.operationCount(.write)
        _ = try await onRanks(1) { comm in try await Checkpointer(engine: engine, communicator: comm).save(saved, to: path) }
        // The data file goes out in a few vectored writes (headers and payloads batched up to
        // 4 MiB); then the sidecar, `.metadata` and their temporary names.
        let writes = engine.syscalls.operationCount(.write) - writesBefore
        #expect(writes <= 6, "\(writes) writes for \(tensors.count) records")

        let whole = try await Self.load(tensors, ranks: 1, path: path, engine: engine)[0]
        // Ten records, about 3 MiB in one file: a single span, or two where the block limit falls.
        #expect(whole.readCount <= 2, "\(whole.readCount) reads for \(tensors.count) records")
        #expect(whole.payloadBytesRead == whole.neededBytes)
        // Headers and alignment padding only: a few KiB per record.
        #expect(whole.transferredBytes - whole.neededBytes <= tensors.count * 3 * 4096, "\(whole)")

        // Halves and thirds of every tensor: spans never read another rank's rows.
        for ranks in [2, 3] {
            let reports = try await Self.load(tensors, ranks: ranks, path: path, engine: engine)
            for report in reports {
                #expect(report.payloadBytesRead <= report.neededBytes + report.neededBytes / 100, "\(report)")
            }
        }
        await engine.shutdown()
    }

    /// A load reports its data pipeline's transfers as issued (what `ckpt-bench` replays against
    /// the raw device): one per read counted, their bytes the bytes transferred, in file order,
    /// inside the files, and covering every byte the rank needed.
    @Test func loadsReportTheReadsTheyIssued() async throws {
        let dir = TempDir(); defer { dir.cleanup() }
        let engine = try makeEngine(bufferSize: 1 << 20, bufferCount: 8)
        let tensors = Self.tensors(seed: 47)
        let path = dir.path + "/ckpt"
        var states: [StateDict] = [StateDict(), StateDict()]
        for t in tensors {
            // Saved by two ranks (row halves), so loads on three need parts of records.
            for r in 0..<2 { states[r].set(t.fqn, .tensor(t.rowShard(r, of: 2))) }
        }
        let saved = states
        _ = try await onRanks(2) { comm in
            try await Checkpointer(engine: engine, communicator: comm).save(saved[comm.rank], to: path)
        }
        var sizes: [String: Int] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: path) where name.hasSuffix(".distcp") {
            sizes[name] = try #require(try FileManager.default.attributesOfItem(atPath: path + "/" + name)[.size] as? Int)
        }
        for ranks in [1, 2, 3] {
            for report in try await Self.load(tensors, ranks: ranks, path: path, engine: engine) {
                let reads = report.dataReads
                #expect(!reads.isEmpty)
                #expect(reads.count == report.readCount, "\(ranks) ranks: \(reads.count) reads listed, \(report.readCount) counted")
                #expect(reads.reduce(0) { $0 + $1.length } == report.transferredBytes, "\(ranks) ranks: \(report)")
                for (a, b) in zip(reads, reads.dropFirst()) {
                    #expect(a.file < b.file || (a.file == b.file && a.offset <= b.offset), "\(a) before \(b)")
                }
                for read in reads {
                    let size = try #require(sizes[read.file], "\(read.file) is not a data file")
                    #expect(read.offset >= 0 && read.length > 0 && read.offset + read.length <= size, "\(read) of a \(size)-byte file")
                }
                #expect(reads.reduce(0) { $0 + $1.length } >= report.neededBytes)
            }
        }
        await engine.shutdown()
    }
}
