import CCkptHash
import CkptFormat
import CkptIO
import CkptPlan
import Foundation

extension Checkpointer {
    /// Loads the checkpoint in `directory` into `state` (a collective): every tensor chunk of
    /// `state` is filled from the saved chunks that overlap it, whatever the world size and chunk
    /// layout it was saved with (resharding), reading only the byte ranges needed. Non-tensor
    /// entries of `state` name the values to load; they are returned in the report.
    ///
    /// Throws ``CheckpointError/Code/incompleteCheckpoint`` when the directory has no committed
    /// `.metadata`, ``CheckpointError/Code/mismatch`` when names, shapes or dtypes differ from what
    /// was saved, ``CheckpointError/Code/corrupt`` when files contradict the metadata or the
    /// checksums.
    public func load(into state: StateDict, from directory: String) async throws -> LoadReport {
        engine.buffers.resetPeak()
        let clock = ContinuousClock()
        let start = clock.now
        // 1. Rank 0 reads and decodes `.metadata` (and the sidecar) once and checks them; everyone
        // gets the decoded form in binary (much cheaper to decode than the pickle), or rank 0's error.
        var answer: [UInt8]?
        var mine: (metadata: DCPMetadata, sidecar: ChecksumSidecar?)?
        var localError: (any Error)?
        if isCoordinator {
            let content: CommittedMessage.Content
            let parts = await Self.readCommitted(directory, engine: engine, sidecar: options.verifyChecksums)
            do {
                if !parts[0].isEmpty { throw Wire.decodeError(parts[0]) }
                let decoded = try Self.decodeCommitted(
                    directory: directory, metadata: parts[1], sidecar: parts[2], verify: options.verifyChecksums)
                mine = decoded
                content = .committed(decoded.0, decoded.1)
            } catch {
                localError = error
                content = .failure(ErrorMessage(
                    error as? CheckpointError ?? CheckpointError(.io, "reading '\(directory)'", underlying: error)))
            }
            answer = communicator.worldSize > 1
                ? Wire.encode(CommittedMessage(content), capacity: parts[1].count + parts[2].count / 2 + 64) : []
        }
        let received = try await communicator.broadcast(answer, root: 0)
        if let localError { throw localError }
        let metadata: DCPMetadata
        var sidecar: ChecksumSidecar?
        if let mine {
            (metadata, sidecar) = mine
        } else {
            switch try Wire.decode(CommittedMessage.self, received).content {
            case .failure(let error):
                throw error.checkpointError
            case .committed(let m, let s):
                (metadata, sidecar) = (m, s)
            }
        }
        if !options.verifyChecksums {
            sidecar = nil
        } else if sidecar == nil {
            throw CheckpointError(
                .invalidArgument,
                "rank \(rank) verifies checksums but rank 0 does not: every rank must load with the same verifyChecksums")
        }
        var loader = LoadExecution(directory: directory, metadata: metadata, sidecar: sidecar, engine: engine, options: options)
        let decoded = clock.now
        var report = try await loader.run(state)
        report.phases.metadata = (decoded - start).seconds
        return report
    }

    /// Decodes `.metadata` and (when verifying) the sidecar, checking they belong together.
    static func decodeCommitted(
        directory: String, metadata bytes: [UInt8], sidecar sidecarBytes: [UInt8], verify: Bool
    ) throws -> (DCPMetadata, ChecksumSidecar?) {
        let metadataPath = directory + "/" + metadataFileName
        let metadata: DCPMetadata
        do {
            metadata = try DCPMetadata(decoding: bytes)
        } catch {
            throw CheckpointError(.corrupt, "'\(metadataPath)': \(error.at(file: metadataPath))", underlying: error)
        }
        guard verify else { return (metadata, nil) }
        let sidecarPath = directory + "/" + checksumFileName
        guard !sidecarBytes.isEmpty else {
            throw CheckpointError(.corrupt, "'\(sidecarPath)' is missing: the checkpoint has no checksums to verify")
        }
        let decoded = try ChecksumSidecar.decode(sidecarBytes, path: sidecarPath)
        guard decoded.saveID == metadata.storageMeta?.saveID else {
            throw CheckpointError(
                .corrupt,
                "'\(sidecarPath)' belongs to save \(decoded.saveID), but .metadata is save \(metadata.storageMeta?.saveID ?? "(none)")")
        }
        return (metadata, decoded)
    }

    /// Reads `.metadata` (and optionally the sidecar): [error, metadata, sidecar] byte strings.
    static func readCommitted(_ directory: String, engine: IOEngine, sidecar: Bool) async -> [[UInt8]] {
        let path = directory + "/" + metadataFileName
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            return [Wire.errorBytes(CheckpointError(.invalidArgument, "'\(directory)' is not a directory")), [], []]
        }
        guard FileManager.default.fileExists(atPath: path) else {
            return [
                Wire.errorBytes(CheckpointError(
                    .incompleteCheckpoint,
                    "'\(directory)' holds no committed checkpoint: '\(metadataFileName)' is missing (an interrupted save, or not a DCP checkpoint)")),
                [], [],
            ]
        }
        do {
            let metadata = try await readWholeFile(path, engine: engine)
            var sidecarBytes: [UInt8] = []
            let sidecarPath = directory + "/" + checksumFileName
            if sidecar, FileManager.default.fileExists(atPath: sidecarPath) {
                sidecarBytes = try await readWholeFile(sidecarPath, engine: engine)
            }
            return [[], metadata, sidecarBytes]
        } catch {
            return [Wire.errorBytes(CheckpointError(.io, "cannot read '\(path)'", underlying: error)), [], []]
        }
    }

    /// Reads a whole (small) file through the engine.
    static func readWholeFile(_ path: String, engine: IOEngine) async throws -> [UInt8] {
        let file = try engine.open(path, mode: .read, direct: false)
        defer { try? engine.close(file) }
        let size = Int(try engine.size(of: file))
        let buffer = TensorBuffer(uninitializedByteCount: size)
        try await engine.read(file, at: 0, into: buffer.bytes)
        return Array(buffer.bytes)
    }
}

extension Wire {
    /// The wire bytes of `error` (code, message, cause), for ``decodeError(_:)`` on any rank.
    static func errorBytes(_ error: CheckpointError) -> [UInt8] {
        encode(ErrorMessage(error))
    }

    static func decodeError(_ bytes: [UInt8]) -> CheckpointError {
        do {
            return try decode(ErrorMessage.self, bytes).checkpointError
        } catch {
            return CheckpointError(.protocolViolation, "undecodable error from rank 0", underlying: error)
        }
    }
}

/// One rank's load: plan, locate payloads, read, scatter, verify.
struct LoadExecution {
    let directory: String
    let metadata: DCPMetadata
    let sidecar: ChecksumSidecar?
    let engine: IOEngine
    let options: CheckpointOptions

    /// Data files by index (the planner's file ids).
    private var fileNames: [String] = []
    private var fileIndex: [String: Int] = [:]
    /// Record location of each needed saved chunk.
    private struct NeededChunk {
        var tensor: Int
        var savedChunk: Int
        var fqn: String
        var box: ChunkBox
        var dtype: DType
        var file: Int
        var recordOffset: Int
        var recordLength: Int
        var payload: PayloadLocation?
    }

    init(directory: String, metadata: DCPMetadata, sidecar: ChecksumSidecar?, engine: IOEngine, options: CheckpointOptions) {
        self.directory = directory
        self.metadata = metadata
        self.sidecar = sidecar
        self.engine = engine
        self.options = options
    }

    mutating func run(_ state: StateDict) async throws -> LoadReport {
        let clock = ContinuousClock()
        var mark = clock.now
        var phases = LoadPhases()
        func lap() -> Double {
            let now = clock.now
            defer { mark = now }
            return (now - mark).seconds
        }
        // Phase 1: overlaps from metadata.
        var destinations: [TensorBuffer] = []
        var plans: [TensorOverlapPlan] = []
        var valueRequests: [(fqn: String, info: StorageInfo)] = []
        for entry in state.entries {
            let saved = savedEntry(entry.fqn)
            switch entry.value {
            case .tensor(let tensor):
                var locals: [LocalChunk] = []
                for chunk in tensor.chunks {
                    try Checkpointer.validate(chunk, of: tensor, fqn: entry.fqn)
                    locals.append(LocalChunk(
                        box: ChunkBox(offsets: chunk.offsets, sizes: chunk.sizes), destination: destinations.count,
                        baseOffset: chunk.byteOffset))
                    destinations.append(chunk.buffer)
                }
                let request = TensorLoadRequest(
                    fqn: entry.fqn, globalShape: tensor.globalShape, elementSize: tensor.dtype.itemSize,
                    dtype: tensor.dtype.torchName, localChunks: locals)
                do {
                    plans.append(try LoadPlanner.planOverlaps(request, saved: saved))
                } catch {
                    throw CheckpointError(.mismatch, "loading '\(directory)': \(error)", underlying: error)
                }
            case .value:
                do {
                    try LoadPlanner.checkBytesRequest(fqn: entry.fqn, saved: saved)
                } catch {
                    throw CheckpointError(.mismatch, "loading '\(directory)': \(error)", underlying: error)
                }
                guard let info = metadata.storage(fqn: entry.fqn, offsets: nil) else {
                    throw CheckpointError(.corrupt, "'\(directory)/.metadata' has no storage entry for value '\(entry.fqn)'")
                }
                valueRequests.append((entry.fqn, info))
            }
        }

        // Phase 2: where each needed saved chunk's record is.
        var needed: [NeededChunk] = []
        for (t, plan) in plans.enumerated() {
            guard case .tensor(let savedTensor)? = metadata.stateDictMetadata[plan.request.fqn] else { continue }
            for savedIndex in plan.neededSavedChunks {
                let box = plan.saved.chunks[savedIndex]
                guard let info = metadata.storage(fqn: plan.request.fqn, offsets: box.offsets) else {
                    throw CheckpointError(
                        .corrupt, "'\(directory)/.metadata' has no storage entry for '\(plan.request.fqn)' chunk at \(box.offsets)")
                }
                needed.append(NeededChunk(
                    tensor: t, savedChunk: savedIndex, fqn: plan.request.fqn, box: box,
                    dtype: savedTensor.properties.dtype, file: index(of: info.relativePath),
                    recordOffset: info.offset, recordLength: info.length))
            }
        }
        for request in valueRequests { _ = index(of: request.info.relativePath) }

        let files = try openFiles()
        defer { for file in files { try? engine.close(file) } }
        let fileSizes = try checkLengths(files, needed: needed, values: valueRequests)
        phases.plan = lap()

        // Phase 3: small records are read whole, neighbours together, and served at once; the
        // others are located from their heads and read by the plan below.
        let small = try await serveSmallRecords(
            &needed, plans: plans, destinations: destinations, files: files, fileSizes: fileSizes)
        phases.smallRecords = lap()
        let headBytes = try await locatePayloads(&needed, files: files, fileSizes: fileSizes)
        phases.heads = lap()
        let headerBytes = headBytes + small.bytesRead - small.payloadBytes
        var payloads: [[Int: PayloadLocation]] = Array(repeating: [:], count: plans.count)
        for chunk in needed {
            guard let payload = chunk.payload else { continue }
            payloads[chunk.tensor][chunk.savedChunk] = payload
        }
        let sources = plans.enumerated().map { TensorReadSource(plan: $1, payloads: payloads[$0]) }
        var readOptions = options.readPlan
        // Staged reads are widened to whole 4096-byte blocks: keep room for that in a pool buffer.
        readOptions.maxReadSize = min(readOptions.maxReadSize, engine.buffers.bufferSize - 2 * TensorBuffer.alignment)
        let readPlan: ReadPlan
        do {
            readPlan = try LoadPlanner.planReads(tensors: sources, options: readOptions)
        } catch {
            throw CheckpointError(.corrupt, "loading '\(directory)': \(error)", underlying: error)
        }

        // Phase 4: read and scatter.
        guard engine.buffers.bufferSize >= 4 * TensorBuffer.alignment else {
            throw CheckpointError(.invalidArgument, "the I/O engine's buffers (\(engine.buffers.bufferSize) bytes) must be at least 16 KiB for loads")
        }
        var (directCount, transferred) = try await execute(
            readPlan, files: files, fileSizes: fileSizes, destinations: destinations, served: small.served)
        transferred += small.bytesRead + headBytes
        phases.reads = lap()

        // Phase 5: values, checksums.
        var values: [String: TorchValue] = [:]
        for request in valueRequests {
            values[request.fqn] = try await readValue(request.fqn, request.info, files: files)
        }
        var verified = 0
        if let sidecar {
            verified = try await verify(needed, values: valueRequests, sidecar: sidecar, files: files)
        }
        phases.finish = lap()
        return LoadReport(
            neededBytes: readPlan.neededBytes, payloadBytesRead: readPlan.readBytes, transferredBytes: transferred,
            headerBytesRead: headerBytes,
            readCount: readPlan.readCount, directReadCount: directCount, verifiedChunks: verified,
            peakBufferBytes: engine.buffers.peakHeldBytes, values: values, phases: phases)
    }

    private func savedEntry(_ fqn: String) -> SavedEntry? {
        switch metadata.stateDictMetadata[fqn] {
        case nil: return nil
        case .bytes?: return .bytes
        case .tensor(let t)?:
            return .tensor(SavedTensorLayout(
                globalShape: t.size, elementSize: t.properties.dtype.itemSize, dtype: t.properties.dtype.torchName,
                chunks: t.chunks.map { ChunkBox(offsets: $0.offsets, sizes: $0.sizes) }))
        }
    }

    private mutating func index(of name: String) -> Int {
        if let i = fileIndex[name] { return i }
        fileIndex[name] = fileNames.count
        fileNames.append(name)
        return fileNames.count - 1
    }

    private func path(_ file: Int) -> String { directory + "/" + fileNames[file] }

    private func openFiles() throws -> [IOFile] {
        var files: [IOFile] = []
        for (i, name) in fileNames.enumerated() {
            guard !name.contains("/"), !name.hasPrefix(".") || name.count > 2, name != ".." else {
                for f in files { try? engine.close(f) }
                throw CheckpointError(.corrupt, "'\(directory)/.metadata' names an unsafe data file path '\(name)'")
            }
            do {
                files.append(try engine.open(path(i), mode: .read, direct: options.direct))
            } catch {
                for f in files { try? engine.close(f) }
                throw CheckpointError(
                    .corrupt, "data file '\(path(i))' named by '\(directory)/.metadata' cannot be opened", underlying: error)
            }
        }
        return files
    }

    /// Checks every record lies inside its file; returns the file sizes.
    private func checkLengths(_ files: [IOFile], needed: [NeededChunk], values: [(fqn: String, info: StorageInfo)]) throws -> [Int] {
        var sizes: [Int] = []
        for file in files { sizes.append(Int(try engine.size(of: file))) }
        for chunk in needed {
            let end = chunk.recordOffset.addingReportingOverflow(chunk.recordLength)
            guard chunk.recordOffset >= 0, chunk.recordLength >= 0, !end.overflow, end.partialValue <= sizes[chunk.file] else {
                throw CheckpointError(
                    .corrupt,
                    "'\(path(chunk.file))' is \(sizes[chunk.file]) bytes, but the record of '\(chunk.fqn)' chunk at \(chunk.box.offsets) is at offset \(chunk.recordOffset) with length \(chunk.recordLength) (truncated file?)")
            }
        }
        for value in values {
            let file = fileIndex[value.info.relativePath] ?? 0
            let end = value.info.offset.addingReportingOverflow(value.info.length)
            guard value.info.offset >= 0, value.info.length >= 0, !end.overflow, end.partialValue <= sizes[file] else {
                throw CheckpointError(
                    .corrupt,
                    "'\(path(file))' is \(sizes[file]) bytes, but value '\(value.fqn)' is at offset \(value.info.offset) with length \(value.info.length)")
            }
        }
        return sizes
    }

    /// Payload ranges already copied to their destinations, per file (sorted by offset).
    struct ServedRanges: Sendable {
        var ranges: [Int: [Range<Int>]] = [:]

        func contains(file: Int, offset: Int) -> Bool {
            guard let list = ranges[file] else { return false }
            var lo = 0, hi = list.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if list[mid].upperBound <= offset { lo = mid + 1 } else { hi = mid }
            }
            return lo < list.count && list[lo].contains(offset)
        }
    }

    /// Records up to this size are read whole (header and payload in one transfer).
    static let smallRecordLimit = 1 << 20

    /// Reads small records whole, grouping neighbours of the same file into one transfer of at
    /// most a pool buffer, locates each payload, and copies the needed runs to their destinations
    /// right away: one I/O for many small tensors instead of a header read plus a payload read
    /// each. Records it cannot serve (DCP's safetensors variant) are left to the general path.
    private func serveSmallRecords(
        _ needed: inout [NeededChunk], plans: [TensorOverlapPlan], destinations: [TensorBuffer], files: [IOFile],
        fileSizes: [Int]
    ) async throws -> (served: ServedRanges, bytesRead: Int, payloadBytes: Int) {
        let alignment = TensorBuffer.alignment
        let span = engine.buffers.bufferSize - 2 * alignment
        let limit = min(Self.smallRecordLimit, span)
        let candidates = needed.indices.filter { needed[$0].recordLength <= limit }
            .sorted { (needed[$0].file, needed[$0].recordOffset) < (needed[$1].file, needed[$1].recordOffset) }
        // Groups of neighbouring records: same file, gaps of at most 64 KiB, span within a buffer.
        var groups: [[Int]] = []
        for i in candidates {
            let chunk = needed[i]
            if let last = groups.last?.last, let first = groups.last?.first,
                needed[last].file == chunk.file,
                chunk.recordOffset - (needed[last].recordOffset + needed[last].recordLength) <= 64 << 10,
                chunk.recordOffset + chunk.recordLength - needed[first].recordOffset <= span - alignment
            {
                groups[groups.count - 1].append(i)
            } else {
                groups.append([i])
            }
        }
        guard !groups.isEmpty else { return (ServedRanges(), 0, 0) }
        struct Served: Sendable {
            var index: Int
            var payload: PayloadLocation
        }
        let engine = self.engine
        let snapshot = needed
        let workers = max(1, min(groups.count, engine.buffers.bufferCount / 2, 8))
        let frozenGroups = groups
        let results = try await withThrowingTaskGroup(of: ([Served], Int).self) { tasks in
            for w in 0..<workers {
                tasks.addTask {
                    var served: [Served] = []
                    var bytes = 0
                    var g = w
                    while g < frozenGroups.count {
                        let group = frozenGroups[g]
                        let f = snapshot[group[0]].file
                        let first = snapshot[group[0]].recordOffset
                        let last = group.map { snapshot[$0].recordOffset + snapshot[$0].recordLength }.max() ?? first
                        let start = first / alignment * alignment
                        let end = min((last + alignment - 1) / alignment * alignment, fileSizes[f])
                        let buffer = try await engine.buffers.acquire()
                        do {
                            let window = UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[..<(end - start)])
                            try await engine.read(files[f], at: Int64(start), into: window)
                            bytes += end - start
                            for i in group {
                                var chunk = snapshot[i]
                                let at = chunk.recordOffset - start
                                let record = UnsafeRawBufferPointer(rebasing: window[at..<(at + chunk.recordLength)])
                                // Only zip records: the safetensors variant's length is not its blob's.
                                guard record.count >= 4, record.loadUnaligned(as: UInt32.self) == 0x0403_4B50 else { continue }
                                guard try locate(&chunk, head: record) == nil, let payload = chunk.payload else {
                                    throw CheckpointError(
                                        .corrupt, "'\(path(chunk.file))' at offset \(chunk.recordOffset): record of '\(chunk.fqn)' does not hold its payload")
                                }
                                let plan = plans[chunk.tensor]
                                for overlap in plan.overlaps where overlap.savedChunk == chunk.savedChunk {
                                    for run in LoadPlanner.copyRuns(for: overlap, in: plan, payload: payload) {
                                        let from = run.sourceOffset - start
                                        let dest = destinations[run.destination].bytes
                                        UnsafeMutableRawBufferPointer(rebasing: dest[run.destinationOffset..<(run.destinationOffset + run.length)])
                                            .copyMemory(from: UnsafeRawBufferPointer(rebasing: window[from..<(from + run.length)]))
                                    }
                                }
                                served.append(Served(index: i, payload: payload))
                            }
                            engine.buffers.release(buffer)
                        } catch {
                            engine.buffers.release(buffer)
                            throw error
                        }
                        g += workers
                    }
                    return (served, bytes)
                }
            }
            var all: ([Served], Int) = ([], 0)
            for try await part in tasks {
                all.0 += part.0
                all.1 += part.1
            }
            return all
        }
        var ranges = ServedRanges()
        var payloadBytes = 0
        for s in results.0 {
            payloadBytes += s.payload.length
            needed[s.index].payload = s.payload
            ranges.ranges[s.payload.file, default: []].append(s.payload.offset..<(s.payload.offset + max(s.payload.length, 1)))
        }
        for f in ranges.ranges.keys { ranges.ranges[f]?.sort { $0.lowerBound < $1.lowerBound } }
        return (ranges, results.1, payloadBytes)
    }

    /// Reads the first bytes of every needed record (in batches) and finds the payload in each:
    /// a torch.save zip record, or DCP's safetensors variant. Returns the header bytes read.
    private func locatePayloads(_ needed: inout [NeededChunk], files: [IOFile], fileSizes: [Int]) async throws -> Int {
        let headSize = 4096
        var headerBytes = 0
        var pending = needed.indices.filter { needed[$0].payload == nil }
        var want = [Int](repeating: headSize, count: needed.count)
        var rounds = 0
        while !pending.isEmpty {
            rounds += 1
            guard rounds <= 8 else {
                throw CheckpointError(.corrupt, "record headers in '\(directory)' keep asking for more bytes")
            }
            var next: [Int] = []
            for batchStart in stride(from: 0, to: pending.count, by: 256) {
                let batch = Array(pending[batchStart..<min(batchStart + 256, pending.count)])
                // A safetensors-variant record's length is its tensor's bytes, not the blob's: the
                // head may extend past it, up to the end of the file.
                let lengths = batch.map { min(want[$0], fileSizes[needed[$0].file] - needed[$0].recordOffset) }
                var starts: [Int] = []
                var total = 0
                for n in lengths {
                    starts.append(total)
                    total += (n + 4095) / 4096 * 4096
                }
                let heads = TensorBuffer(uninitializedByteCount: total)
                var requests: [IORequest] = []
                for (k, i) in batch.enumerated() {
                    requests.append(.read(
                        files[needed[i].file], offset: Int64(needed[i].recordOffset),
                        into: UnsafeMutableRawBufferPointer(rebasing: heads.bytes[starts[k]..<(starts[k] + lengths[k])])))
                }
                do {
                    try await engine.perform(requests)
                } catch {
                    throw CheckpointError(.io, "reading record headers in '\(directory)'", underlying: error)
                }
                for (k, i) in batch.enumerated() {
                    headerBytes += lengths[k]
                    let head = UnsafeRawBufferPointer(rebasing: heads.bytes[starts[k]..<(starts[k] + lengths[k])])
                    if let more = try locate(&needed[i], head: head) {
                        want[i] = more
                        next.append(i)
                    }
                }
            }
            pending = next
        }
        return headerBytes
    }

    /// Finds the payload of one record from its head; returns the head size needed when short.
    private func locate(_ chunk: inout NeededChunk, head: UnsafeRawBufferPointer) throws -> Int? {
        let where_ = "'\(path(chunk.file))' at offset \(chunk.recordOffset) ('\(chunk.fqn)' chunk at \(chunk.box.offsets))"
        let expectedBytes = chunk.box.sizes.reduce(1, *) * chunk.dtype.itemSize
        if head.count >= 4, head.loadUnaligned(as: UInt32.self) != 0x0403_4B50 {
            // DCP's safetensors variant: the record offset is the start of a safetensors blob.
            do {
                let need = try SafetensorsHeader.headerBytesNeeded(prefix: head)
                if need > head.count { return need }
                let blob = try DCPSafetensorsBlob(parsing: UnsafeRawBufferPointer(rebasing: head[..<need]))
                let entry = try blob.chunk(fqn: chunk.fqn, offsets: chunk.box.offsets)
                guard entry.dtype == chunk.dtype, entry.shape == chunk.box.sizes, entry.dataRange.count == expectedBytes else {
                    throw CheckpointError(
                        .corrupt,
                        "\(where_): safetensors entry is \(entry.dtype) \(entry.shape), metadata says \(chunk.dtype) \(chunk.box.sizes)")
                }
                chunk.payload = PayloadLocation(
                    file: chunk.file, offset: chunk.recordOffset + blob.header.dataOffset + entry.dataRange.lowerBound,
                    length: entry.dataRange.count)
                return nil
            } catch let error as FormatError {
                throw CheckpointError(.corrupt, "\(where_): \(error)", underlying: error)
            }
        }
        let location: TensorRecordLocation
        do {
            location = try TorchTensorRecord.locate(
                head: UnsafeRawBufferPointer(rebasing: head[..<min(head.count, chunk.recordLength)]), recordLength: chunk.recordLength)
        } catch {
            throw CheckpointError(.corrupt, "\(where_): \(error.at(file: path(chunk.file), baseOffset: chunk.recordOffset))", underlying: error)
        }
        switch location {
        case .needMoreHead(let bytes):
            return bytes
        case .located(let record):
            let tensor = record.tensor
            guard tensor.dtype == chunk.dtype else {
                throw CheckpointError(.corrupt, "\(where_): record holds \(tensor.dtype), metadata says \(chunk.dtype)")
            }
            guard tensor.shape == chunk.box.sizes || (tensor.elementCount == 0 && expectedBytes == 0) else {
                throw CheckpointError(.corrupt, "\(where_): record holds shape \(tensor.shape), metadata says \(chunk.box.sizes)")
            }
            guard tensor.isContiguous, record.tensorRange.count == expectedBytes,
                record.tensorRange.upperBound <= chunk.recordLength
            else {
                throw CheckpointError(
                    .corrupt,
                    "\(where_): record's tensor spans \(record.tensorRange.count) bytes (contiguous: \(tensor.isContiguous)), expected \(expectedBytes)")
            }
            chunk.payload = PayloadLocation(
                file: chunk.file, offset: chunk.recordOffset + record.tensorRange.lowerBound, length: expectedBytes)
            return nil
        }
    }

    /// Runs the reads: direct ones straight into destination memory (one batch), staged ones
    /// through pool buffers by a few workers. Returns the number of direct reads.
    /// Returns the number of direct reads and the bytes actually transferred (staged reads are
    /// widened to whole 4096-byte blocks).
    private func execute(
        _ plan: ReadPlan, files: [IOFile], fileSizes: [Int], destinations: [TensorBuffer], served: ServedRanges
    ) async throws -> (Int, Int) {
        let alignment = TensorBuffer.alignment
        var direct: [IORequest] = []
        var staged: [(file: Int, read: PlannedRead)] = []
        var plan = plan
        for f in plan.files.indices {
            let file = plan.files[f].file
            plan.files[f].reads.removeAll { served.contains(file: file, offset: $0.offset) }
        }
        for filePlan in plan.files {
            for read in filePlan.reads {
                if read.isDirect, let entry = read.scatter.first {
                    let dest = destinations[entry.destination].bytes
                    direct.append(.read(
                        files[filePlan.file], offset: Int64(read.offset),
                        into: UnsafeMutableRawBufferPointer(rebasing: dest[entry.destinationOffset..<(entry.destinationOffset + read.length)])))
                } else if read.length > 0 {
                    staged.append((filePlan.file, read))
                }
            }
        }
        let engine = self.engine
        let directory = self.directory
        let names = fileNames
        // Staged reads: each worker takes reads in turn; at most half the pool in use.
        let workers = max(1, min(staged.count, engine.buffers.bufferCount / 2, 8))
        let stagedReads = staged
        let directReads = direct.count
        var transferred = 0
        for filePlan in plan.files {
            for read in filePlan.reads where read.isDirect { transferred += read.length }
        }
        for (f, read) in staged {
            let start = read.offset / alignment * alignment
            transferred += min((read.offset + read.length + alignment - 1) / alignment * alignment, fileSizes[f]) - start
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<workers {
                    group.addTask {
                        var k = w
                        while k < stagedReads.count {
                            let (f, read) = stagedReads[k]
                            // Read whole aligned blocks into the aligned pool buffer, so the
                            // engine needs no staging buffer of its own (no pool deadlock when
                            // several ranks share one engine); clamp at the end of the file.
                            let start = read.offset / alignment * alignment
                            let end = min((read.offset + read.length + alignment - 1) / alignment * alignment, fileSizes[f])
                            let buffer = try await engine.buffers.acquire()
                            do {
                                let target = UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[..<(end - start)])
                                try await engine.read(files[f], at: Int64(start), into: target)
                                let shift = read.offset - start
                                for entry in read.scatter {
                                    let dest = destinations[entry.destination].bytes
                                    let from = shift + entry.bufferOffset
                                    UnsafeMutableRawBufferPointer(rebasing: dest[entry.destinationOffset..<(entry.destinationOffset + entry.length)])
                                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: target[from..<(from + entry.length)]))
                                }
                                engine.buffers.release(buffer)
                            } catch {
                                engine.buffers.release(buffer)
                                throw error
                            }
                            k += workers
                        }
                    }
                }
                if !direct.isEmpty {
                    try await engine.perform(direct)
                }
                try await group.waitForAll()
            }
        } catch let error as IOError {
            let name = error.path.map { ($0 as NSString).lastPathComponent } ?? names.first ?? ""
            throw CheckpointError(.io, "reading '\(directory)/\(name)'", underlying: error)
        }
        return (directReads, transferred)
    }

    private func readValue(_ fqn: String, _ info: StorageInfo, files: [IOFile]) async throws -> TorchValue {
        guard let f = fileIndex[info.relativePath] else {
            throw CheckpointError(.protocolViolation, "value '\(fqn)' file not indexed")
        }
        let buffer = TensorBuffer(uninitializedByteCount: info.length)
        try await engine.read(files[f], at: Int64(info.offset), into: buffer.bytes)
        do {
            return try ByteIORecord.decode(UnsafeRawBufferPointer(buffer.bytes))
        } catch {
            throw CheckpointError(
                .corrupt, "value '\(fqn)': \(error.at(file: path(f), baseOffset: info.offset))", underlying: error)
        }
    }

    /// Reads every needed chunk's whole payload (and every value record) and checks its XXH3.
    private func verify(
        _ needed: [NeededChunk], values: [(fqn: String, info: StorageInfo)], sidecar: ChecksumSidecar, files: [IOFile]
    ) async throws -> Int {
        struct Key: Hashable {
            var fqn: String
            var offsets: [Int]?
        }
        var expected: [Key: ChecksumSidecar.Entry] = [:]
        for entry in sidecar.entries { expected[Key(fqn: entry.fqn, offsets: entry.offsets)] = entry }
        var count = 0
        for chunk in needed {
            guard let payload = chunk.payload else { continue }
            guard let entry = expected[Key(fqn: chunk.fqn, offsets: chunk.box.offsets)], let hash = entry.hash else {
                throw CheckpointError(.corrupt, "no checksum for '\(chunk.fqn)' chunk at \(chunk.box.offsets) in the sidecar")
            }
            let got = try await hashRange(files[chunk.file], offset: payload.offset, length: payload.length)
            guard got == hash else {
                throw CheckpointError(
                    .corrupt,
                    "checksum mismatch: tensor '\(chunk.fqn)', chunk at offsets \(chunk.box.offsets) sizes \(chunk.box.sizes), file '\(path(chunk.file))' bytes \(payload.offset)..<\(payload.offset + payload.length): XXH3 \(String(got, radix: 16)), saved \(entry.xxh3)")
            }
            count += 1
        }
        for value in values {
            guard let entry = expected[Key(fqn: value.fqn, offsets: nil)], let hash = entry.hash,
                let f = fileIndex[value.info.relativePath]
            else {
                throw CheckpointError(.corrupt, "no checksum for value '\(value.fqn)' in the sidecar")
            }
            let got = try await hashRange(files[f], offset: value.info.offset, length: value.info.length)
            guard got == hash else {
                throw CheckpointError(
                    .corrupt,
                    "checksum mismatch: value '\(value.fqn)', file '\(path(f))' bytes \(value.info.offset)..<\(value.info.offset + value.info.length)")
            }
            count += 1
        }
        return count
    }

    private func hashRange(_ file: IOFile, offset: Int, length: Int) async throws -> UInt64 {
        guard let state = ckpt_xxh3_create() else { throw CheckpointError(.io, "cannot allocate a hash state") }
        defer { ckpt_xxh3_free(state) }
        let buffer = try await engine.buffers.acquire()
        defer { engine.buffers.release(buffer) }
        var done = 0
        while done < length {
            let n = min(buffer.bytes.count, length - done)
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[..<n])
            try await engine.read(file, at: Int64(offset + done), into: target)
            ckpt_xxh3_update(state, target.baseAddress, n)
            done += n
        }
        return ckpt_xxh3_digest(state)
    }
}
