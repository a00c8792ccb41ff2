/// Resharding load planning (DCP's `create_default_local_load_plan` plus a byte-range-minimal
/// reader), as pure functions, in two phases:
///
/// 1. ``planOverlaps(_:saved:)`` per tensor, from metadata only: validation and the saved chunks
///    each local block needs.
/// 2. ``planReads(tensors:bytes:options:)`` once the payload offsets of the needed chunks are
///    known: copy runs, coalesced into per-file reads with scatter lists.
public enum LoadPlanner {
    /// Phase one for one tensor.
    ///
    /// - Parameters:
    ///   - request: The tensor and the rank's blocks.
    ///   - saved: What the checkpoint holds under `request.fqn` (`nil`: nothing).
    /// - Returns: The intersections and the needed saved chunks.
    /// - Throws: ``LoadPlanError`` on a missing entry, a kind, shape, dtype or element-size
    ///   mismatch, a malformed request or layout, or a requested region no saved chunk covers.
    public static func planOverlaps(
        _ request: TensorLoadRequest, saved: SavedEntry?
    ) throws(LoadPlanError) -> TensorOverlapPlan {
        let fqn = request.fqn
        guard let saved else { throw .missingInCheckpoint(fqn: fqn) }
        guard case .tensor(let layout) = saved else {
            throw .kindMismatch(fqn: fqn, saved: "non-tensor value", requested: "tensor")
        }
        if let problem = BoxMath.shapeProblem(request.globalShape, elementSize: request.elementSize) {
            throw .invalidRequest(fqn: fqn, reason: "global shape \(request.globalShape): \(problem)")
        }
        if layout.globalShape != request.globalShape {
            throw .shapeMismatch(fqn: fqn, saved: layout.globalShape, requested: request.globalShape)
        }
        if layout.dtype != request.dtype {
            throw .dtypeMismatch(fqn: fqn, saved: layout.dtype, requested: request.dtype)
        }
        if layout.elementSize != request.elementSize {
            throw .elementSizeMismatch(fqn: fqn, saved: layout.elementSize, requested: request.elementSize)
        }
        let shape = layout.globalShape
        let elementSize = layout.elementSize
        for (index, chunk) in layout.chunks.enumerated() {
            if let problem = BoxMath.boundsProblem(chunk, inShape: shape) {
                throw .invalidSavedLayout(fqn: fqn, reason: "chunk \(index) (\(chunk)) \(problem)")
            }
        }
        let index = OverlapIndex(boxes: layout.chunks, shape: shape)
        if let (a, b) = index.firstOverlappingPair() {
            throw .invalidSavedLayout(
                fqn: fqn, reason: "chunk \(a) (\(layout.chunks[a])) overlaps chunk \(b) (\(layout.chunks[b]))")
        }

        var overlaps: [ChunkOverlap] = []
        var needed = 0
        for (localIndex, local) in request.localChunks.enumerated() {
            if let problem = BoxMath.boundsProblem(local.box, inShape: shape) {
                throw .invalidRequest(fqn: fqn, reason: "local chunk \(localIndex) (\(local.box)) \(problem)")
            }
            // In bounds, so the byte count cannot overflow (the global one does not).
            let localBytes = BoxMath.byteCount(local.box.sizes, elementSize: elementSize) ?? 0
            let (end, overflow) = local.baseOffset.addingReportingOverflow(localBytes)
            if local.baseOffset < 0 || overflow || end < 0 {
                throw .invalidRequest(
                    fqn: fqn, reason: "local chunk \(localIndex) has invalid base offset \(local.baseOffset)")
            }
            needed &+= localBytes
            var covered = 0
            for savedIndex in index.overlapping(local.box) {
                let overlap = intersect(
                    saved: layout.chunks[savedIndex], savedIndex: savedIndex,
                    local: local.box, localIndex: localIndex, elementSize: elementSize)
                covered &+= overlap.byteCount
                overlaps.append(overlap)
            }
            if covered != localBytes {
                let hole = HoleFinder.firstHole(
                    in: local.box, coveredBy: index.overlapping(local.box).map { layout.chunks[$0] })
                    ?? local.box
                throw .notCovered(fqn: fqn, requested: local.box, hole: hole, savedChunkCount: layout.chunks.count)
            }
        }
        overlaps.sort { ($0.savedChunk, $0.localChunk) < ($1.savedChunk, $1.localChunk) }
        var neededChunks: [Int] = []
        for overlap in overlaps where neededChunks.last != overlap.savedChunk {
            neededChunks.append(overlap.savedChunk)
        }
        return TensorOverlapPlan(
            request: request, saved: layout, overlaps: overlaps,
            neededSavedChunks: neededChunks, neededBytes: needed)
    }

    /// Phase one for a whole state dict: ``planOverlaps(_:saved:)`` for every request, looking each
    /// fqn up in `checkpoint`. Stops at the first error.
    public static func planOverlaps(
        _ requests: [TensorLoadRequest], checkpoint: [String: SavedEntry]
    ) throws(LoadPlanError) -> [TensorOverlapPlan] {
        var plans: [TensorOverlapPlan] = []
        plans.reserveCapacity(requests.count)
        for request in requests {
            plans.append(try planOverlaps(request, saved: checkpoint[request.fqn]))
        }
        return plans
    }

    /// Checks a request for a non-tensor value against what was saved.
    ///
    /// - Throws: ``LoadPlanError/missingInCheckpoint(fqn:)`` or ``LoadPlanError/kindMismatch(fqn:saved:requested:)``.
    public static func checkBytesRequest(fqn: String, saved: SavedEntry?) throws(LoadPlanError) {
        guard let saved else { throw .missingInCheckpoint(fqn: fqn) }
        if case .tensor(let layout) = saved {
            throw .kindMismatch(fqn: fqn, saved: "tensor of shape \(layout.globalShape) (\(layout.dtype))", requested: "non-tensor value")
        }
    }

    /// DCP's intersection rule for one overlapping pair.
    static func intersect(
        saved: ChunkBox, savedIndex: Int, local: ChunkBox, localIndex: Int, elementSize: Int
    ) -> ChunkOverlap {
        let count = saved.sizes.count
        var storage = [Int](repeating: 0, count: count)
        var destination = [Int](repeating: 0, count: count)
        var lengths = [Int](repeating: 0, count: count)
        for dim in 0..<count {
            let s = saved.offsets[dim]
            let l = local.offsets[dim]
            lengths[dim] = min(s + saved.sizes[dim], l + local.sizes[dim]) - max(s, l)
            storage[dim] = max(l - s, 0)
            destination[dim] = max(s - l, 0)
        }
        return ChunkOverlap(
            savedChunk: savedIndex, localChunk: localIndex, storageOffsets: storage,
            destinationOffsets: destination, lengths: lengths,
            byteCount: BoxMath.byteCount(lengths, elementSize: elementSize) ?? 0)
    }

    /// The copy runs of one overlap: maximal ranges contiguous in both the saved payload and the
    /// destination. Trailing dimensions full on both sides merge, so a row shard into a row shard
    /// is one run; otherwise there is one run per row of the intersection.
    ///
    /// - Parameters:
    ///   - overlap: An overlap of `plan` (an overlap of another plan gives no runs if its indices
    ///     are out of range, and meaningless runs otherwise).
    ///   - plan: Its phase-one plan.
    ///   - payload: Where the saved chunk's payload lies.
    public static func copyRuns(
        for overlap: ChunkOverlap, in plan: TensorOverlapPlan, payload: PayloadLocation
    ) -> [CopyRun] {
        guard plan.saved.chunks.indices.contains(overlap.savedChunk),
            plan.request.localChunks.indices.contains(overlap.localChunk)
        else { return [] }
        var runs: [CopyRun] = []
        RunBuilder.appendRuns(
            overlap: overlap, savedSizes: plan.saved.chunks[overlap.savedChunk].sizes,
            local: plan.request.localChunks[overlap.localChunk], elementSize: plan.saved.elementSize,
            payload: payload, into: &runs)
        return runs
    }

    /// Phase two: copy runs of every tensor and BYTE_IO record, coalesced into reads per file.
    ///
    /// Reads never leave one saved payload (or BYTE_IO record). Within one, runs sorted by file
    /// offset merge when adjacent or overlapping; gaps are bridged smallest first while the bridged
    /// bytes stay within `gapBudgetFraction` of the needed bytes; reads are split at
    /// `maxReadSize`.
    ///
    /// - Throws: ``LoadPlanError/missingPayload(fqn:savedChunk:box:)``,
    ///   ``LoadPlanError/invalidPayload(fqn:savedChunk:reason:)``,
    ///   ``LoadPlanError/invalidBytesRequest(fqn:reason:)``, ``LoadPlanError/invalidOptions(_:)``.
    public static func planReads(
        tensors: [TensorReadSource],
        bytes: [BytesReadRequest] = [],
        options: ReadPlanOptions = ReadPlanOptions()
    ) throws(LoadPlanError) -> ReadPlan {
        guard options.maxReadSize >= 1 else {
            throw .invalidOptions("maxReadSize must be at least 1, got \(options.maxReadSize)")
        }
        guard options.gapBudgetFraction >= 0, options.gapBudgetFraction.isFinite else {
            throw .invalidOptions("gapBudgetFraction must be a finite value >= 0, got \(options.gapBudgetFraction)")
        }
        var coalescer = ReadCoalescer()
        var needed = 0
        for source in tensors {
            let plan = source.plan
            needed &+= plan.neededBytes
            var position = 0
            while position < plan.overlaps.count {
                let savedIndex = plan.overlaps[position].savedChunk
                let box = plan.saved.chunks[savedIndex]
                guard let payload = source.payloads[savedIndex] else {
                    throw .missingPayload(fqn: plan.request.fqn, savedChunk: savedIndex, box: box)
                }
                let expected = BoxMath.byteCount(box.sizes, elementSize: plan.saved.elementSize) ?? -1
                if payload.length != expected {
                    throw .invalidPayload(
                        fqn: plan.request.fqn, savedChunk: savedIndex,
                        reason: "length \(payload.length) but chunk \(box) of \(plan.saved.elementSize)-byte elements needs \(expected)")
                }
                let (_, overflow) = payload.offset.addingReportingOverflow(payload.length)
                if payload.offset < 0 || overflow {
                    throw .invalidPayload(
                        fqn: plan.request.fqn, savedChunk: savedIndex, reason: "invalid offset \(payload.offset)")
                }
                coalescer.beginUnit(file: payload.file)
                while position < plan.overlaps.count, plan.overlaps[position].savedChunk == savedIndex {
                    let overlap = plan.overlaps[position]
                    RunBuilder.appendRuns(
                        overlap: overlap, savedSizes: box.sizes,
                        local: plan.request.localChunks[overlap.localChunk],
                        elementSize: plan.saved.elementSize, payload: payload, into: &coalescer.runs)
                    position += 1
                }
                coalescer.endUnit()
            }
        }
        for request in bytes {
            let (end, overflow) = request.offset.addingReportingOverflow(request.length)
            if request.offset < 0 || request.length < 0 || overflow || end < 0 {
                throw .invalidBytesRequest(
                    fqn: request.fqn, reason: "offset \(request.offset) length \(request.length)")
            }
            needed &+= request.length
            guard request.length > 0 else { continue }
            coalescer.beginUnit(file: request.file)
            coalescer.runs.append(
                CopyRun(
                    file: request.file, sourceOffset: request.offset, destination: request.destination,
                    destinationOffset: 0, length: request.length))
            coalescer.endUnit()
        }
        let budget = Int((Double(needed) * options.gapBudgetFraction).rounded(.down))
        return coalescer.makePlan(neededBytes: needed, gapBudget: budget, maxReadSize: options.maxReadSize)
    }
}
