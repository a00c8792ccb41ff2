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
        // 1. Rank 0 reads `.metadata` (and the sidecar, and the index) once; everyone gets the
        // decoded form in binary (much cheaper to decode than the pickle), or rank 0's error. When
        // the index matches the files, its binary form is sent as it is (nothing decoded first);
        // otherwise rank 0 decodes and checks the files and sends what it decoded.
        var answer: [UInt8]?
        var mine: (metadata: DCPMetadata, sidecar: ChecksumSidecar?)?
        var indexMessage: [UInt8]?
        var localError: (any Error)?
        let shares = communicator.worldSize > 1
        if isCoordinator {
            do {
                let files = try await Self.readCommitted(directory, engine: engine, optional: !options.verifyChecksums)
                if let message = files.indexMessage {
                    indexMessage = message
                    answer = shares ? [CommittedSource.index.rawValue] + message : []
                } else {
                    let decoded = try await Self.decodeCommitted(files, directory: directory, verify: options.verifyChecksums)
                    mine = decoded
                    answer = shares
                        ? [CommittedSource.files.rawValue] + Wire.encode(
                            CommittedMessage(.committed(decoded.0, decoded.1)),
                            capacity: files.metadata.count + files.sidecar.count / 2 + 64)
                        : []
                }
            } catch {
                localError = error
                let failure = ErrorMessage(
                    error as? CheckpointError ?? CheckpointError(.io, "reading '\(directory)'", underlying: error))
                answer = shares ? [CommittedSource.files.rawValue] + Wire.encode(CommittedMessage(.failure(failure))) : []
            }
        }
        let received = try await communicator.broadcast(isCoordinator ? answer ?? [] : nil, root: 0)
        if let localError { throw localError }
        let metadata: DCPMetadata
        var sidecar: ChecksumSidecar?
        var fromIndex = false
        if let mine {
            (metadata, sidecar) = mine
        } else if let indexMessage {
            (metadata, sidecar) = try Self.decodeIndex(indexMessage, directory: directory, verify: options.verifyChecksums)
            fromIndex = true
        } else {
            (metadata, sidecar, fromIndex) = try Self.committed(received, directory: directory, verify: options.verifyChecksums)
        }
        let hints = sidecar
        if !options.verifyChecksums {
            sidecar = nil
        } else if sidecar == nil {
            throw CheckpointError(
                .invalidArgument,
                "rank \(rank) verifies checksums but rank 0 does not: every rank must load with the same verifyChecksums")
        }
        var loader = LoadExecution(
            directory: directory, metadata: metadata, sidecar: sidecar, engine: engine, options: options, hints: hints)
        let decoded = clock.now
        var report = try await loader.run(state)
        report.phases.metadata = (decoded - start).seconds
        report.metadataFromIndex = fromIndex
        return report
    }

    /// Decodes `.metadata` and (when verifying) the sidecar, checking they belong together. The
    /// two are decoded concurrently (each takes milliseconds on a large model, and every rank
    /// waits for them).
    static func decodeCommitted(
        _ files: CommittedFiles, directory: String, verify: Bool
    ) async throws -> (DCPMetadata, ChecksumSidecar?) {
        let bytes = files.metadata, sidecarBytes = files.sidecar
        let metadataPath = directory + "/" + metadataFileName
        let sidecarPath = directory + "/" + checksumFileName
        async let parsedSidecar: Result<ChecksumSidecar, any Error>? = sidecarBytes.isEmpty
            ? nil : Result { try ChecksumSidecar.decode(sidecarBytes, path: sidecarPath) }
        let metadata: DCPMetadata
        do {
            metadata = try DCPMetadata(decoding: bytes)
        } catch {
            _ = await parsedSidecar
            throw CheckpointError(.corrupt, "'\(metadataPath)': \(error.at(file: metadataPath))", underlying: error)
        }
        return (metadata, try acceptSidecar(await parsedSidecar, metadata: metadata, directory: directory, verify: verify))
    }

    /// The sidecar a load goes on with, given the one read with `metadata` (nil: none): when
    /// verifying, it must be there, whole and of the same save; otherwise it is only a hint of
    /// where payloads are (each record's layout is still checked), and a missing, damaged or stale
    /// one is ignored.
    static func acceptSidecar(
        _ sidecar: Result<ChecksumSidecar, any Error>?, metadata: DCPMetadata, directory: String, verify: Bool
    ) throws -> ChecksumSidecar? {
        let sidecarPath = directory + "/" + checksumFileName
        guard verify else {
            guard case .success(let decoded)? = sidecar, decoded.saveID == metadata.storageMeta?.saveID else { return nil }
            return decoded
        }
        guard let sidecar else {
            throw CheckpointError(.corrupt, "'\(sidecarPath)' is missing: the checkpoint has no checksums to verify")
        }
        let decoded = try sidecar.get()
        guard decoded.saveID == metadata.storageMeta?.saveID else {
            throw CheckpointError(
                .corrupt,
                "'\(sidecarPath)' belongs to save \(decoded.saveID), but .metadata is save \(metadata.storageMeta?.saveID ?? "(none)")")
        }
        return decoded
    }

    /// Decodes rank 0's answer to a load: a ``CommittedSource`` byte, then a ``CommittedMessage``
    /// in wire form. Returns the metadata, the sidecar and whether they came from the index (then
    /// checked here, on every rank alike: rank 0 sent them without decoding them).
    static func committed(
        _ answer: [UInt8], directory: String, verify: Bool
    ) throws -> (metadata: DCPMetadata, sidecar: ChecksumSidecar?, fromIndex: Bool) {
        guard let first = answer.first, let source = CommittedSource(rawValue: first) else {
            throw CheckpointError(
                .protocolViolation,
                "malformed load answer from rank 0 (\(answer.count) bytes): expected a source byte (0 files, 1 index) first")
        }
        let body = Array(answer.dropFirst())
        switch source {
        case .files:
            switch try Wire.decode(CommittedMessage.self, body).content {
            case .failure(let error): throw error.checkpointError
            case .committed(let metadata, let sidecar): return (metadata, sidecar, false)
            }
        case .index:
            let (metadata, sidecar) = try decodeIndex(body, directory: directory, verify: verify)
            return (metadata, sidecar, true)
        }
    }

    /// Decodes the index's message (rank 0 sends it without decoding it, so each rank checks it
    /// alike): the metadata and the sidecar it holds.
    static func decodeIndex(
        _ message: [UInt8], directory: String, verify: Bool
    ) throws -> (DCPMetadata, ChecksumSidecar?) {
        let path = directory + "/" + CommittedIndex.fileName
        let content: CommittedMessage.Content
        do {
            content = try Wire.decode(CommittedMessage.self, message).content
        } catch {
            throw CheckpointError(.corrupt, "'\(path)': \(error.message)", underlying: error)
        }
        guard case .committed(let metadata, let sidecar) = content else {
            throw CheckpointError(.corrupt, "'\(path)' holds an error instead of the checkpoint's metadata")
        }
        return (metadata, try acceptSidecar(sidecar.map { .success($0) }, metadata: metadata, directory: directory, verify: verify))
    }

    /// A committed checkpoint's small files as read: `.metadata`, the checksum sidecar and the
    /// index (empty when absent).
    struct CommittedFiles {
        var metadata: [UInt8]
        var sidecar: [UInt8]
        var index: [UInt8]

        /// The index's message, when the index belongs to exactly these `.metadata` and sidecar.
        var indexMessage: [UInt8]? { CommittedIndex.message(in: index, metadata: metadata, sidecar: sidecar) }
    }

    /// Reads `.metadata`, the checksum sidecar when present (when `optional`, a sidecar that
    /// cannot be read counts as absent) and the index when present (a cache: one that cannot be
    /// read counts as absent), all at once. Throws when `directory` holds no committed checkpoint
    /// or `.metadata` cannot be read.
    static func readCommitted(_ directory: String, engine: IOEngine, optional: Bool) async throws -> CommittedFiles {
        let path = directory + "/" + metadataFileName
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CheckpointError(.invalidArgument, "'\(directory)' is not a directory")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw CheckpointError(
                .incompleteCheckpoint,
                "'\(directory)' holds no committed checkpoint: '\(metadataFileName)' is missing (an interrupted save, or not a DCP checkpoint)")
        }
        do {
            // Each is a cold read of a few hundred KB.
            let sidecarPath = directory + "/" + checksumFileName
            let indexPath = directory + "/" + CommittedIndex.fileName
            let wantSidecar = FileManager.default.fileExists(atPath: sidecarPath)
            // The index is read only when its size is plausible for the files it claims to match
            // (its wire form is smaller than the pickle and the JSON together): a huge file there
            // is not read into memory.
            let wantIndex = CommittedIndex.plausibleSize(
                Self.fileSize(indexPath), metadata: Self.fileSize(path), sidecar: Self.fileSize(sidecarPath))
            // An optional sidecar (only a hint) that cannot be read counts as missing.
            async let sidecarBytes: [UInt8] = wantSidecar
                ? (optional ? ((try? await readWholeFile(sidecarPath, engine: engine)) ?? []) : try await readWholeFile(sidecarPath, engine: engine))
                : []
            async let indexBytes: [UInt8] = wantIndex ? ((try? await readWholeFile(indexPath, engine: engine)) ?? []) : []
            let metadata = try await readWholeFile(path, engine: engine)
            return CommittedFiles(metadata: metadata, sidecar: try await sidecarBytes, index: await indexBytes)
        } catch {
            throw CheckpointError(.io, "cannot read '\(path)'", underlying: error)
        }
    }

    /// The size of the file at `path`, nil when it cannot be known.
    static func fileSize(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
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

/// Where rank 0's answer to a load comes from (its first byte).
enum CommittedSource: UInt8 {
    /// Rank 0 decoded and checked `.metadata` and the sidecar.
    case files = 0
    /// The index matched the files; sent as it is.
    case index = 1
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

/// Where the payload of every saved tensor chunk of a checkpoint is (``LoadExecution/locateAll()``).
struct LocatedPayloads: Sendable {
    /// Data file names (relative to the checkpoint directory), by the file ids of the payloads.
    var files: [String]
    var fileSizes: [Int]
    /// By fqn, by saved chunk index (in `.metadata`'s order).
    var chunks: [String: [Int: PayloadLocation]] = [:]
}

extension DCPMetadata {
    /// The saved layout of `fqn` as the load planner sees it (nil when the checkpoint lacks it).
    func savedEntry(_ fqn: String) -> SavedEntry? {
        switch stateDictMetadata[fqn] {
        case nil: return nil
        case .bytes?: return .bytes
        case .tensor(let t)?:
            return .tensor(SavedTensorLayout(
                globalShape: t.size, elementSize: t.properties.dtype.itemSize, dtype: t.properties.dtype.torchName,
                chunks: t.chunks.map { ChunkBox(offsets: $0.offsets, sizes: $0.sizes) }))
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

    /// Where ckpt's own saves put each payload (from the sidecar), trusted only where it agrees
    /// with the record's standard layout.
    let hints: ChecksumSidecar?

    init(
        directory: String, metadata: DCPMetadata, sidecar: ChecksumSidecar?, engine: IOEngine, options: CheckpointOptions,
        hints: ChecksumSidecar? = nil
    ) {
        self.directory = directory
        self.metadata = metadata
        self.sidecar = sidecar
        self.engine = engine
        self.options = options
        self.hints = hints ?? sidecar
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
            let saved = metadata.savedEntry(entry.fqn)
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

        // Phase 3: the heads of the records not read whole locate their payloads (a few
        // milliseconds, while the device queue is still empty); then one pipeline, in file order
        // with a bounded number in flight, reads small records whole (neighbours together, served
        // at once) and the planned payload ranges (straight into destinations where aligned).
        guard engine.buffers.bufferSize >= 4 * TensorBuffer.alignment else {
            throw CheckpointError(.invalidArgument, "the I/O engine's buffers (\(engine.buffers.bufferSize) bytes) must be at least 16 KiB for loads")
        }
        let smallLimit = min(Self.smallRecordLimit, engine.buffers.bufferSize - 3 * TensorBuffer.alignment)
        var neededPerChunk: [[Int: Int]] = Array(repeating: [:], count: plans.count)
        for (t, plan) in plans.enumerated() {
            for overlap in plan.overlaps { neededPerChunk[t][overlap.savedChunk, default: 0] += overlap.byteCount }
        }
        // Only records the rank needs whole: reading a partly needed one whole would fetch bytes
        // nobody asked for.
        // Where a record has the exact length of a standard torch.save record of its dtype and
        // shape, its payload is predicted. ckpt's sidecar names each payload's place: where it
        // agrees with the prediction (two independent sources), the payload is known without
        // reading the head; otherwise the head is read in the same pipeline and checked against
        // the prediction afterwards (a wrong guess is read again).
        let (predictions, confirmed) = predictPayloads(needed)
        // Small records the rank needs whole are read whole (only those: reading a partly needed
        // one whole would fetch bytes nobody asked for), except where the payload is known and
        // 4096-aligned: that one goes straight into tensor memory.
        let smallCandidates = needed.indices.filter { i in
            let chunk = needed[i]
            let bytes = chunk.box.sizes.reduce(chunk.dtype.itemSize, *)
            if confirmed[i], let p = predictions[i], p.offset % TensorBuffer.alignment == 0 { return false }
            return chunk.recordLength <= smallLimit && neededPerChunk[chunk.tensor][chunk.savedChunk] == bytes
        }
        let smallSet = Set(smallCandidates)
        let others = needed.indices.filter { !smallSet.contains($0) }
        var unpredicted: [Int] = []
        var items = smallGroups(smallCandidates, needed: needed, fileSizes: fileSizes)
        for i in others {
            guard let predicted = predictions[i] else {
                unpredicted.append(i)
                continue
            }
            needed[i].payload = predicted
            if confirmed[i] { continue }
            let start = needed[i].recordOffset / TensorBuffer.alignment * TensorBuffer.alignment
            let end = min(
                (predicted.offset + TensorBuffer.alignment - 1) / TensorBuffer.alignment * TensorBuffer.alignment,
                fileSizes[needed[i].file])
            items.append(.head(file: needed[i].file, start: start, end: end, chunk: i))
        }
        var headBytes = try await locatePayloads(&needed, only: unpredicted, files: files, fileSizes: fileSizes)
        phases.heads = lap()
        let readPlan = try plannedReads(others, needed: needed, plans: plans)
        var payloadBytesRead = readPlan.readBytes
        for filePlan in readPlan.files {
            for read in filePlan.reads where read.length > 0 { items.append(.planned(file: filePlan.file, read: read)) }
        }
        // The values (small records) are read in one batch alongside the data pipeline.
        var valueReads: [ValueRead] = []
        for request in valueRequests {
            guard let f = fileIndex[request.info.relativePath] else {
                throw CheckpointError(.protocolViolation, "value '\(request.fqn)' file not indexed")
            }
            valueReads.append(ValueRead(fqn: request.fqn, file: f, offset: request.info.offset, length: request.info.length, path: path(f)))
        }
        async let valuesRead = Self.readValues(valueReads, engine: engine, files: files)
        var done = try await runReads(items, needed: needed, plans: plans, destinations: destinations, files: files, fileSizes: fileSizes)
        for served in done.served { needed[served.index].payload = served.payload }
        headBytes += done.headBytesRead
        // Records the small path could not serve (DCP's safetensors variant) and wrong guesses:
        // heads first, then their planned reads.
        let servedSet = Set(done.served.map(\.index))
        for i in done.mispredicted { needed[i].payload = nil }
        let leftovers = smallCandidates.filter { !servedSet.contains($0) } + done.mispredicted
        if !leftovers.isEmpty {
            headBytes += try await locatePayloads(&needed, only: leftovers, files: files, fileSizes: fileSizes)
            let more = try plannedReads(leftovers, needed: needed, plans: plans)
            var moreItems: [DataRead] = []
            for filePlan in more.files {
                for read in filePlan.reads where read.length > 0 { moreItems.append(.planned(file: filePlan.file, read: read)) }
            }
            let again = try await runReads(
                moreItems, needed: needed, plans: plans, destinations: destinations, files: files, fileSizes: fileSizes)
            done.add(again)
            payloadBytesRead += more.readBytes
        }
        let headerBytes = headBytes + done.smallBytesRead - done.smallPayloadBytes
        let transferred = done.transferred + headBytes
        phases.reads = lap()

        // Phase 5: values, checksums.
        let values = try await valuesRead
        var verified = 0
        if let sidecar {
            verified = try await verify(needed, values: valueRequests, sidecar: sidecar, files: files)
        }
        phases.finish = lap()
        return LoadReport(
            neededBytes: plans.reduce(0) { $0 + $1.neededBytes }, payloadBytesRead: payloadBytesRead + done.smallPayloadBytes,
            transferredBytes: transferred, headerBytesRead: headerBytes,
            readCount: done.readCount, directReadCount: done.directCount, verifiedChunks: verified,
            peakBufferBytes: engine.buffers.peakHeldBytes, values: values, phases: phases,
            dataReads: done.extents.sorted { ($0.file, $0.offset) < ($1.file, $1.offset) }.map {
                LoadRead(file: fileNames[$0.file], offset: $0.offset, length: $0.length)
            })
    }

    /// Each chunk's payload location predicted from its record's length (nil where the record is
    /// not a standard one), and whether ckpt's sidecar names the same place.
    private func predictPayloads(_ needed: [NeededChunk]) -> (predictions: [PayloadLocation?], confirmed: [Bool]) {
        var layouts = LayoutCache()
        var hinted: [HintKey: ChecksumSidecar.Entry] = [:]
        hinted.reserveCapacity(hints?.entries.count ?? 0)
        for entry in hints?.entries ?? [] where entry.offsets != nil {
            hinted[HintKey(fqn: entry.fqn, offsets: entry.offsets ?? [])] = entry
        }
        var predictions: [PayloadLocation?] = []
        var confirmed: [Bool] = []
        predictions.reserveCapacity(needed.count)
        confirmed.reserveCapacity(needed.count)
        for chunk in needed {
            let predicted = layouts.predict(chunk)
            predictions.append(predicted)
            var agrees = false
            if let predicted, let hint = hinted[HintKey(fqn: chunk.fqn, offsets: chunk.box.offsets)] {
                agrees = hint.file == fileNames[chunk.file] && hint.recordOffset == chunk.recordOffset
                    && hint.recordLength == chunk.recordLength && hint.payloadOffset == predicted.offset
                    && hint.payloadLength == predicted.length
            }
            confirmed.append(agrees)
        }
        return (predictions, confirmed)
    }

    /// Where the payload of every saved chunk of every tensor is: from the sidecar where it agrees
    /// with the record's standard layout, else from the record's head (read and parsed).
    mutating func locateAll() async throws -> LocatedPayloads {
        var needed: [NeededChunk] = []
        for (fqn, entry) in metadata.stateDictMetadata.entries {
            guard case .tensor(let tensor) = entry else { continue }
            for (savedIndex, chunk) in tensor.chunks.enumerated() {
                guard let info = metadata.storage(fqn: fqn, offsets: chunk.offsets) else {
                    throw CheckpointError(.corrupt, "'\(directory)/.metadata' has no storage entry for '\(fqn)' chunk at \(chunk.offsets)")
                }
                needed.append(NeededChunk(
                    tensor: 0, savedChunk: savedIndex, fqn: fqn, box: ChunkBox(offsets: chunk.offsets, sizes: chunk.sizes),
                    dtype: tensor.properties.dtype, file: index(of: info.relativePath), recordOffset: info.offset,
                    recordLength: info.length))
            }
        }
        let files = try openFiles()
        defer { for file in files { try? engine.close(file) } }
        let fileSizes = try checkLengths(files, needed: needed, values: [])
        let (predictions, confirmed) = predictPayloads(needed)
        var unknown: [Int] = []
        for i in needed.indices {
            if confirmed[i], let predicted = predictions[i] {
                needed[i].payload = predicted
            } else {
                unknown.append(i)
            }
        }
        _ = try await locatePayloads(&needed, only: unknown, files: files, fileSizes: fileSizes)
        var located = LocatedPayloads(files: fileNames, fileSizes: fileSizes)
        for chunk in needed {
            guard let payload = chunk.payload else {
                throw CheckpointError(.protocolViolation, "no payload located for '\(chunk.fqn)' chunk at \(chunk.box.offsets)")
            }
            located.chunks[chunk.fqn, default: [:]][chunk.savedChunk] = payload
        }
        return located
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

    /// Records up to this size are read whole (header and payload in one transfer).
    static let smallRecordLimit = 1 << 20

    /// One read of the data pipeline.
    enum DataRead: Sendable {
        /// Neighbouring small records of one file, read whole in one transfer (the `members` are
        /// indices of needed chunks).
        case group(file: Int, start: Int, end: Int, members: [Int])
        /// A planned payload range.
        case planned(file: Int, read: PlannedRead)
        /// The head of a record whose payload was predicted: checked once read.
        case head(file: Int, start: Int, end: Int, chunk: Int)
        /// Neighbouring reads of one file (`parts`, none of them a span) as one vectored transfer
        /// of the 4096-aligned range [start, end): direct payloads land in tensor memory, the
        /// bytes around them (record headers, small records, heads, unaligned tails) in scratch
        /// memory, then each part is finished as it would be alone.
        case span(file: Int, start: Int, end: Int, parts: [DataRead])

        var file: Int {
            switch self {
            case .group(let file, _, _, _), .planned(let file, _), .head(let file, _, _, _), .span(let file, _, _, _): file
            }
        }

        var offset: Int {
            switch self {
            case .group(_, let start, _, _), .head(_, let start, _, _), .span(_, let start, _, _): start
            case .planned(_, let read): read.offset
            }
        }
    }

    /// What the data pipeline did.
    struct DataReadsDone: Sendable {
        struct Served: Sendable {
            var index: Int
            var payload: PayloadLocation
        }
        /// Small records served, with their payload locations.
        var served: [Served] = []
        var smallBytesRead = 0
        var smallPayloadBytes = 0
        var headBytesRead = 0
        /// Chunks whose predicted payload location their head contradicts.
        var mispredicted: [Int] = []
        var readCount = 0
        var directCount = 0
        /// Every byte transferred (staged reads widened to whole blocks).
        var transferred = 0
        /// The transfers as issued: (file index, offset, length).
        var extents: [Extent] = []

        struct Extent: Sendable {
            var file: Int
            var offset: Int
            var length: Int
        }

        mutating func add(_ other: DataReadsDone) {
            served += other.served
            smallBytesRead += other.smallBytesRead
            smallPayloadBytes += other.smallPayloadBytes
            headBytesRead += other.headBytesRead
            mispredicted += other.mispredicted
            readCount += other.readCount
            directCount += other.directCount
            transferred += other.transferred
            extents += other.extents
        }
    }

    struct HintKey: Hashable {
        var fqn: String
        var offsets: [Int]
    }

    /// Predicted payload locations of standard torch.save records, one layout per (dtype, shape).
    private struct LayoutCache {
        struct Key: Hashable {
            var dtype: DType
            var shape: [Int]
        }
        /// Per key: the record length and payload offset for each candidate alignment.
        private var layouts: [Key: [(recordLength: Int, payloadOffset: Int)]] = [:]

        /// The payload location if the record's length is that of a standard record (written with
        /// 4096-byte payload alignment, as ckpt does for large payloads, or 64, as torch.save does).
        mutating func predict(_ chunk: NeededChunk) -> PayloadLocation? {
            let key = Key(dtype: chunk.dtype, shape: chunk.box.sizes)
            if layouts[key] == nil {
                var candidates: [(recordLength: Int, payloadOffset: Int)] = []
                for alignment in [4096, 64] {
                    if let layout = try? TorchTensorRecord.layout(
                        dtype: chunk.dtype, shape: chunk.box.sizes, payloadCRC32: 0, alignment: alignment)
                    {
                        candidates.append((layout.recordLength, layout.payloadOffset))
                    }
                }
                layouts[key] = candidates
            }
            let bytes = chunk.box.sizes.reduce(chunk.dtype.itemSize, *)
            guard let match = layouts[key]?.first(where: { $0.recordLength == chunk.recordLength }), bytes > 0 else { return nil }
            return PayloadLocation(file: chunk.file, offset: chunk.recordOffset + match.payloadOffset, length: bytes)
        }
    }

    /// Groups small records of the same file lying near each other (gaps of at most 64 KiB) into
    /// reads of at most a pool buffer.
    private func smallGroups(_ candidates: [Int], needed: [NeededChunk], fileSizes: [Int]) -> [DataRead] {
        let alignment = TensorBuffer.alignment
        let span = engine.buffers.bufferSize - 2 * alignment
        let sorted = candidates.filter { needed[$0].recordLength <= span - alignment }
            .sorted { (needed[$0].file, needed[$0].recordOffset) < (needed[$1].file, needed[$1].recordOffset) }
        var groups: [[Int]] = []
        for i in sorted {
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
        return groups.map { group in
            let f = needed[group[0]].file
            let first = needed[group[0]].recordOffset
            let last = group.map { needed[$0].recordOffset + needed[$0].recordLength }.max() ?? first
            let start = first / alignment * alignment
            let end = min((last + alignment - 1) / alignment * alignment, fileSizes[f])
            return .group(file: f, start: start, end: end, members: group)
        }
    }

    /// The read plan for the parts the rank needs of the located chunks `indices`.
    private func plannedReads(_ indices: [Int], needed: [NeededChunk], plans: [TensorOverlapPlan]) throws -> ReadPlan {
        var payloads: [[Int: PayloadLocation]] = Array(repeating: [:], count: plans.count)
        var chunksByTensor: [Set<Int>] = Array(repeating: [], count: plans.count)
        for i in indices {
            guard let payload = needed[i].payload else { continue }
            payloads[needed[i].tensor][needed[i].savedChunk] = payload
            chunksByTensor[needed[i].tensor].insert(needed[i].savedChunk)
        }
        var sources: [TensorReadSource] = []
        for (t, plan) in plans.enumerated() where !chunksByTensor[t].isEmpty {
            sources.append(TensorReadSource(plan: plan.restricted(toSavedChunks: chunksByTensor[t]), payloads: payloads[t]))
        }
        var readOptions = options.readPlan
        // Staged reads are widened to whole 4096-byte blocks: keep room for that in a pool buffer.
        readOptions.maxReadSize = min(readOptions.maxReadSize, engine.buffers.bufferSize - 2 * TensorBuffer.alignment)
        do {
            return try LoadPlanner.planReads(tensors: sources, options: readOptions)
        } catch {
            throw CheckpointError(.corrupt, "loading '\(directory)': \(error)", underlying: error)
        }
    }

    /// Runs the reads in file order with at most the engine's queue depth of reads in flight:
    /// planned reads straight into destination memory when they land contiguously, otherwise (and
    /// small record groups) through a pool buffer whole 4096-byte blocks at a time, then copied
    /// out. Memory stays bounded without a byte window: reads into tensor memory hold none of
    /// their own, and the others wait for a pool buffer (or a scratch allocation of at most
    /// 64 KiB). Bounding the bytes in flight by the pool as well cost a single rank reading a
    /// whole checkpoint (4→1) 3-5% in paired runs.
    private func runReads(
        _ items: [DataRead], needed: [NeededChunk], plans: [TensorOverlapPlan], destinations: [TensorBuffer],
        files: [IOFile], fileSizes: [Int]
    ) async throws -> DataReadsDone {
        let items = spans(
            items.sorted { ($0.file, $0.offset) < ($1.file, $1.offset) }, destinations: destinations, fileSizes: fileSizes)
        let window = max(2, engine.configuration.queueDepth)
        let this = self
        do {
            return try await withThrowingTaskGroup(of: DataReadsDone.self) { group in
                var total = DataReadsDone()
                var next = 0
                var running = 0
                while next < items.count || running > 0 {
                    while next < items.count, running < window {
                        let item = items[next]
                        group.addTask {
                            try await this.runRead(
                                item, needed: needed, plans: plans, destinations: destinations, files: files, fileSizes: fileSizes)
                        }
                        next += 1
                        running += 1
                    }
                    if let one = try await group.next() {
                        total.add(one)
                        running -= 1
                    }
                }
                return total
            }
        } catch let error as IOError {
            let name = error.path.map { ($0 as NSString).lastPathComponent } ?? fileNames.first ?? ""
            throw CheckpointError(.io, "reading '\(directory)/\(name)'", underlying: error)
        }
    }

    /// Runs one planned read: straight
    /// into destination memory when it lands contiguously, otherwise whole aligned blocks into a
    /// pool buffer (so the engine needs no staging buffer of its own, and no pool deadlock when
    /// ranks share one engine; clamped at the end of the file), then copied out.
    private func perform(
        _ read: PlannedRead, file f: Int, destinations: [TensorBuffer], files: [IOFile], fileSizes: [Int]
    ) async throws -> DataReadsDone {
        var done = DataReadsDone()
        done.readCount = 1
        if read.isDirect {
            let entry = read.scatter[0]
            let dest = destinations[entry.destination].bytes
            let request = IORequest.read(
                files[f], offset: Int64(read.offset),
                into: UnsafeMutableRawBufferPointer(rebasing: dest[entry.destinationOffset..<(entry.destinationOffset + read.length)]))
            try await engine.perform([request])
            done.directCount = 1
            done.transferred = read.length
            done.extents = [.init(file: f, offset: read.offset, length: read.length)]
            return done
        }
        let alignment = TensorBuffer.alignment
        let start = read.offset / alignment * alignment
        let end = min((read.offset + read.length + alignment - 1) / alignment * alignment, fileSizes[f])
        let buffer = try await engine.buffers.acquire()
        defer { engine.buffers.release(buffer) }
        let target = UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[..<(end - start)])
        try await engine.read(files[f], at: Int64(start), into: target)
        done.extents = [.init(file: f, offset: start, length: end - start)]
        let shift = read.offset - start
        for entry in read.scatter {
            let dest = destinations[entry.destination].bytes
            let from = shift + entry.bufferOffset
            UnsafeMutableRawBufferPointer(rebasing: dest[entry.destinationOffset..<(entry.destinationOffset + entry.length)])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: target[from..<(from + entry.length)]))
        }
        done.transferred = end - start
        return done
    }

    /// Whether the head read at `start` confirms the predicted payload location of chunk `i`.
    private func check(head: UnsafeRawBufferPointer, start: Int, chunk i: Int, needed: [NeededChunk]) -> Bool {
        var chunk = needed[i]
        let predicted = chunk.payload
        chunk.payload = nil
        let at = chunk.recordOffset - start
        guard at >= 0, at <= head.count else { return false }
        do {
            return try locate(&chunk, head: UnsafeRawBufferPointer(rebasing: head[at...])) == nil && chunk.payload == predicted
        } catch {
            // Read again by the general path, which reports what is wrong.
            return false
        }
    }

    private func runRead(
        _ item: DataRead, needed: [NeededChunk], plans: [TensorOverlapPlan], destinations: [TensorBuffer],
        files: [IOFile], fileSizes: [Int]
    ) async throws -> DataReadsDone {
        var done = DataReadsDone()
        switch item {
        case .planned(let f, let read):
            done.add(try await perform(read, file: f, destinations: destinations, files: files, fileSizes: fileSizes))
        case .head(let f, let start, let end, let i):
            let head = TensorBuffer(uninitializedByteCount: end - start)
            try await engine.read(files[f], at: Int64(start), into: head.bytes)
            done.readCount = 1
            done.headBytesRead = end - start
            done.extents = [.init(file: f, offset: start, length: end - start)]
            if !check(head: UnsafeRawBufferPointer(head.bytes), start: start, chunk: i, needed: needed) { done.mispredicted = [i] }
        case .group(let f, let start, let end, let members):
            let buffer = try await engine.buffers.acquire()
            defer { engine.buffers.release(buffer) }
            let window = UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[..<(end - start)])
            try await engine.read(files[f], at: Int64(start), into: window)
            done.readCount = 1
            done.transferred = end - start
            done.extents = [.init(file: f, offset: start, length: end - start)]
            done.smallBytesRead = end - start
            done.add(try serveSmall(
                UnsafeRawBufferPointer(window), start: start, members: members, needed: needed, plans: plans,
                destinations: destinations))
        case .span(let f, let start, let end, let parts):
            done.add(try await runSpan(
                file: f, start: start, end: end, parts: parts, needed: needed, plans: plans, destinations: destinations,
                files: files))
        }
        return done
    }

    /// Copies the needed parts of the small records `members`, read whole in `window` (file bytes
    /// from `start`), into the destinations.
    private func serveSmall(
        _ window: UnsafeRawBufferPointer, start: Int, members: [Int], needed: [NeededChunk], plans: [TensorOverlapPlan],
        destinations: [TensorBuffer]
    ) throws -> DataReadsDone {
        var done = DataReadsDone()
        for i in members {
            var chunk = needed[i]
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
            done.served.append(.init(index: i, payload: payload))
            done.smallPayloadBytes += payload.length
        }
        return done
    }

    /// Gaps of at most this many unneeded bytes (record headers, mostly) are read to join two
    /// reads into one span.
    static let spanGapLimit = 16 << 10

    /// Merges neighbouring reads of a file (sorted by file and offset) into vectored spans of at
    /// most one engine block: the device then sees a few large requests instead of one per record
    /// (on virtual disks especially, request size sets the throughput). O_DIRECT loads only; a
    /// buffered load's page cache merges reads by itself.
    private func spans(_ items: [DataRead], destinations: [TensorBuffer], fileSizes: [Int]) -> [DataRead] {
        guard options.direct, items.count > 1 else { return items }
        let limit = engine.buffers.bufferSize
        var out: [DataRead] = []
        out.reserveCapacity(items.count)
        var current: (file: Int, start: Int, end: Int, parts: [DataRead])?
        func close() {
            guard let c = current else { return }
            out.append(c.parts.count == 1 ? c.parts[0] : .span(file: c.file, start: c.start, end: c.end, parts: c.parts))
            current = nil
        }
        for item in items {
            guard let range = spanRange(item, destinations: destinations, fileSizes: fileSizes) else {
                close()
                out.append(item)
                continue
            }
            if var c = current, c.file == item.file, range.start >= c.end, range.start - c.end <= Self.spanGapLimit,
                range.end - c.start <= limit
            {
                c.end = range.end
                c.parts.append(item)
                current = c
            } else {
                close()
                current = (item.file, range.start, range.end, [item])
            }
        }
        close()
        return out
    }

    /// The 4096-aligned file range a read covers as part of a span, or nil when it cannot be one:
    /// a direct payload read must start aligned in the file and in memory.
    private func spanRange(_ item: DataRead, destinations: [TensorBuffer], fileSizes: [Int]) -> (start: Int, end: Int)? {
        let alignment = TensorBuffer.alignment
        let range: (start: Int, end: Int)
        switch item {
        case .group(_, let start, let end, _), .head(_, let start, let end, _):
            range = (start, end)
        case .planned(_, let read):
            guard read.isDirect, read.offset % alignment == 0,
                let base = destinations[read.scatter[0].destination].bytes.baseAddress,
                (Int(bitPattern: base) + read.scatter[0].destinationOffset) % alignment == 0
            else { return nil }
            range = (read.offset, (read.offset + read.length + alignment - 1) / alignment * alignment)
        case .span:
            return nil
        }
        guard range.start % alignment == 0, range.end % alignment == 0, range.end <= fileSizes[item.file] else { return nil }
        return range
    }

    /// Reads a span with one vectored transfer, then finishes each part: unaligned payload tails
    /// copied out of scratch, small records served, heads checked.
    private func runSpan(
        file f: Int, start: Int, end: Int, parts: [DataRead], needed: [NeededChunk], plans: [TensorOverlapPlan],
        destinations: [TensorBuffer], files: [IOFile]
    ) async throws -> DataReadsDone {
        let alignment = TensorBuffer.alignment
        // The transfer's segments in file order: tensor memory, or scratch (dest nil).
        var layout: [(fileStart: Int, length: Int, dest: UnsafeMutableRawPointer?)] = []
        var cursor = start
        func scratch(to end: Int) {
            guard end > cursor else { return }
            if let last = layout.last, last.dest == nil, last.fileStart + last.length == cursor {
                layout[layout.count - 1].length += end - cursor
            } else {
                layout.append((cursor, end - cursor, nil))
            }
            cursor = end
        }
        var done = DataReadsDone()
        done.readCount = 1
        var partBytes = 0
        for part in parts {
            switch part {
            case .planned(_, let read):
                scratch(to: read.offset)
                let body = read.length / alignment * alignment
                let entry = read.scatter[0]
                if body > 0, let base = destinations[entry.destination].bytes.baseAddress {
                    layout.append((read.offset, body, base + entry.destinationOffset))
                    cursor = read.offset + body
                }
                scratch(to: (read.offset + read.length + alignment - 1) / alignment * alignment)
                done.directCount = 1
                done.transferred += cursor - read.offset
                partBytes += cursor - read.offset
            case .group(_, _, let e, _):
                let before = cursor
                scratch(to: e)
                done.transferred += e - before
                done.smallBytesRead += e - before
                partBytes += e - before
            case .head(_, _, let e, _):
                scratch(to: e)
            case .span:
                break
            }
        }
        scratch(to: end)
        // Gaps and heads count as header bytes.
        done.headBytesRead = (end - start) - partBytes
        let scratchBytes = layout.reduce(0) { $0 + ($1.dest == nil ? $1.length : 0) }
        // Scratch: a pool buffer when large (bounded by the pool), else a small allocation (at
        // most 64 KiB per read in flight).
        let pooled = scratchBytes > 64 << 10 ? try await engine.buffers.acquire() : nil
        defer { if let pooled { engine.buffers.release(pooled) } }
        let small = pooled == nil ? TensorBuffer(uninitializedByteCount: max(scratchBytes, 1)) : nil
        guard let scratchBase = pooled?.bytes.baseAddress ?? small?.bytes.baseAddress else { return done }
        var segments: [UnsafeMutableRawBufferPointer] = []
        var scratchAt: [(fileStart: Int, fileEnd: Int, offset: Int)] = []
        var used = 0
        for segment in layout {
            if let dest = segment.dest {
                segments.append(UnsafeMutableRawBufferPointer(start: dest, count: segment.length))
            } else {
                segments.append(UnsafeMutableRawBufferPointer(start: scratchBase + used, count: segment.length))
                scratchAt.append((segment.fileStart, segment.fileStart + segment.length, used))
                used += segment.length
            }
        }
        try await engine.perform([.readv(files[f], offset: Int64(start), into: segments)])
        done.extents = [.init(file: f, offset: start, length: end - start)]
        // The scratch bytes of the file range [from, to) (inside one scratch segment by construction).
        func view(_ from: Int, _ to: Int) throws -> UnsafeRawBufferPointer {
            guard let s = scratchAt.first(where: { $0.fileStart <= from && to <= $0.fileEnd }) else {
                throw CheckpointError(
                    .aborted, "internal error: bytes \(from)..<\(to) of '\(path(f))' are not in the span's scratch memory")
            }
            return UnsafeRawBufferPointer(start: scratchBase + s.offset + (from - s.fileStart), count: to - from)
        }
        for part in parts {
            switch part {
            case .planned(_, let read):
                let body = read.length / alignment * alignment
                guard body < read.length else { continue }
                let entry = read.scatter[0]
                let tail = try view(read.offset + body, read.offset + read.length)
                let dest = destinations[entry.destination].bytes
                UnsafeMutableRawBufferPointer(
                    rebasing: dest[(entry.destinationOffset + body)..<(entry.destinationOffset + read.length)]
                ).copyMemory(from: tail)
            case .group(_, let s, let e, let members):
                done.add(try serveSmall(
                    try view(s, e), start: s, members: members, needed: needed, plans: plans, destinations: destinations))
            case .head(_, let s, let e, let i):
                if !check(head: try view(s, e), start: s, chunk: i, needed: needed) { done.mispredicted.append(i) }
            case .span:
                break
            }
        }
        return done
    }

    /// Reads the first bytes of every needed record (in batches) and finds the payload in each:
    /// a torch.save zip record, or DCP's safetensors variant. Returns the header bytes read.
    private func locatePayloads(
        _ needed: inout [NeededChunk], only indices: [Int], files: [IOFile], fileSizes: [Int]
    ) async throws -> Int {
        let headSize = 4096
        var headerBytes = 0
        var pending = indices.filter { needed[$0].payload == nil }
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

    /// A non-tensor value's record.
    struct ValueRead: Sendable {
        var fqn: String
        var file: Int
        var offset: Int
        var length: Int
        var path: String
    }

    /// Reads the value records in one batch and decodes them.
    static func readValues(_ reads: [ValueRead], engine: IOEngine, files: [IOFile]) async throws -> [String: TorchValue] {
        guard !reads.isEmpty else { return [:] }
        var starts: [Int] = []
        var total = 0
        for read in reads {
            starts.append(total)
            total += read.length
        }
        let buffer = TensorBuffer(uninitializedByteCount: max(total, 1))
        try await engine.perform(reads.enumerated().map { k, read in
            .read(
                files[read.file], offset: Int64(read.offset),
                into: UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[starts[k]..<(starts[k] + read.length)]))
        })
        var values: [String: TorchValue] = [:]
        for (k, read) in reads.enumerated() {
            do {
                values[read.fqn] = try ByteIORecord.decode(
                    UnsafeRawBufferPointer(rebasing: buffer.bytes[starts[k]..<(starts[k] + read.length)]))
            } catch {
                throw CheckpointError(
                    .corrupt, "value '\(read.fqn)': \(error.at(file: read.path, baseOffset: read.offset))", underlying: error)
            }
        }
        return values
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
