/// The coordinator's save planning of DCP (`DefaultSavePlanner.create_global_plan` and
/// `FileSystemWriter` file bucketing), as a pure function.
public enum SavePlanner {
    /// Plans a save from every rank's items.
    ///
    /// Steps: validate each item and cross-rank consistency (same fqn: same kind, global shape,
    /// dtype and element size); de-duplicate (identity `(fqn, offsets)` for tensors, `fqn` for
    /// bytes) with `options.dedup`; build the ordered metadata; validate each tensor's chunks as DCP
    /// does (no overlap; for more than one rank, volumes add up; 0-d tensors exempt); split each
    /// rank's kept items into files. The overlap check is DCP's exact `_check_box_overlap`, under
    /// which a 0-size chunk strictly inside another chunk counts as overlapping (torch would refuse
    /// to save it too).
    ///
    /// - Parameters:
    ///   - ranks: Per rank, its items in state-dict order.
    ///   - options: Dedup policy and file layout.
    /// - Returns: The global plan.
    public static func plan(
        ranks: [[SaveItem]],
        options: SavePlanOptions = SavePlanOptions()
    ) throws(SavePlanError) -> GlobalSavePlan {
        if case .singleFilePerRank(let count) = options.fileLayout, count < 1 {
            throw .invalidOptions("filesPerRank must be at least 1, got \(count)")
        }
        let (identities, names) = try collectIdentities(ranks)
        let (kept, weights) = dedup(identities, ranks: ranks, policy: options.dedup)
        let metadata = try buildMetadata(ranks: ranks, kept: kept, names: names)
        var files: [[PlannedFile]] = []
        var tensorBytes: [Int] = []
        files.reserveCapacity(ranks.count)
        for rank in ranks.indices {
            files.append(assignFiles(rank: rank, items: ranks[rank], kept: kept[rank], layout: options.fileLayout))
            var total = 0
            for index in kept[rank] {
                if case .tensor(let item) = ranks[rank][index] { total &+= item.chunkByteCount ?? 0 }
            }
            tensorBytes.append(total)
        }
        return GlobalSavePlan(
            keptItems: kept, metadata: metadata, files: files,
            assignedWeights: weights, tensorBytesPerRank: tensorBytes)
    }

    // MARK: - Identities and validation

    /// An item's identity, by the number of its fqn among the distinct fqns (each fqn string is
    /// hashed once per item, not once per table).
    private enum Identity: Hashable {
        case tensor(Int, [Int])
        case bytes(Int)
    }

    /// Every item's fqn number (per rank, per item) and the count of distinct fqns.
    struct FQNNumbers {
        var byItem: [[Int]]
        var count: Int
    }

    /// A distinct item identity, with the ranks holding it (ascending) and their item indices.
    struct Holder {
        var holders: [SaveItemReference]
        var torchWeight: Int
        var chunkWeight: Int
    }

    private struct FQNInfo {
        var rank: Int
        var item: SaveItem
    }

    private static func collectIdentities(_ ranks: [[SaveItem]]) throws(SavePlanError) -> ([Holder], FQNNumbers) {
        let itemCount = ranks.reduce(0) { $0 + $1.count }
        var index: [Identity: Int] = [:]
        index.reserveCapacity(itemCount)
        var holders: [Holder] = []
        holders.reserveCapacity(itemCount)
        var numbers: [String: Int] = [:]
        numbers.reserveCapacity(ranks.first?.count ?? 0)
        var firstSeen: [FQNInfo] = []
        var byItem: [[Int]] = []
        byItem.reserveCapacity(ranks.count)
        for (rank, items) in ranks.enumerated() {
            var rankNumbers: [Int] = []
            rankNumbers.reserveCapacity(items.count)
            for (position, item) in items.enumerated() {
                let known = numbers[item.fqn]
                let number = known ?? firstSeen.count
                rankNumbers.append(number)
                let ref = SaveItemReference(rank: rank, item: position)
                let identity: Identity
                let torchWeight: Int
                let chunkWeight: Int
                switch item {
                case .tensor(let tensor):
                    if let problem = BoxMath.shapeProblem(tensor.globalShape, elementSize: tensor.elementSize) {
                        throw .invalidItem(ref, fqn: tensor.fqn, reason: "global shape \(tensor.globalShape): \(problem)")
                    }
                    if let problem = BoxMath.boundsProblem(tensor.chunk, inShape: tensor.globalShape) {
                        throw .invalidItem(ref, fqn: tensor.fqn, reason: "chunk \(tensor.chunk) \(problem)")
                    }
                    identity = .tensor(number, tensor.chunk.offsets)
                    // Both are bounded by the global byte size, checked above.
                    let global = tensor.globalByteCount ?? 0
                    torchWeight = global == 0 ? 1 : global
                    chunkWeight = tensor.chunkByteCount ?? 0
                case .bytes(_, let estimate):
                    identity = .bytes(number)
                    torchWeight = 1
                    chunkWeight = max(estimate, 0)
                }
                // Checked against the first item of the fqn after the item's own validation.
                if let known {
                    try checkConsistency(item, rank: rank, first: firstSeen[known])
                } else {
                    numbers[item.fqn] = number
                    firstSeen.append(FQNInfo(rank: rank, item: item))
                }
                if let existing = index[identity] {
                    if let last = holders[existing].holders.last, last.rank == rank {
                        throw .duplicateItem(fqn: item.fqn, rank: rank, firstItem: last.item, secondItem: position)
                    }
                    let first = holders[existing].holders[0]
                    if case .tensor(let mine) = item, case .tensor(let theirs) = ranks[first.rank][first.item],
                        mine.chunk.sizes != theirs.chunk.sizes
                    {
                        throw .conflictingChunkSizes(
                            fqn: item.fqn, offsets: mine.chunk.offsets, firstRank: first.rank,
                            firstSizes: theirs.chunk.sizes, rank: rank, sizes: mine.chunk.sizes)
                    }
                    holders[existing].holders.append(ref)
                } else {
                    index[identity] = holders.count
                    holders.append(Holder(holders: [ref], torchWeight: torchWeight, chunkWeight: chunkWeight))
                }
            }
            byItem.append(rankNumbers)
        }
        return (holders, FQNNumbers(byItem: byItem, count: firstSeen.count))
    }

    /// An item against the first item seen with its fqn.
    private static func checkConsistency(_ item: SaveItem, rank: Int, first: FQNInfo) throws(SavePlanError) {
        switch (first.item, item) {
        case (.bytes, .bytes):
            return
        case (.tensor, .bytes):
            throw .kindMismatch(fqn: item.fqn, tensorRank: first.rank, bytesRank: rank)
        case (.bytes, .tensor):
            throw .kindMismatch(fqn: item.fqn, tensorRank: rank, bytesRank: first.rank)
        case (.tensor(let a), .tensor(let b)):
            if a.globalShape != b.globalShape {
                throw .inconsistentTensor(
                    fqn: item.fqn, field: "global shape", firstRank: first.rank,
                    firstValue: "\(a.globalShape)", rank: rank, value: "\(b.globalShape)")
            }
            if a.dtype != b.dtype {
                throw .inconsistentTensor(
                    fqn: item.fqn, field: "dtype", firstRank: first.rank,
                    firstValue: a.dtype, rank: rank, value: b.dtype)
            }
            if a.elementSize != b.elementSize {
                throw .inconsistentTensor(
                    fqn: item.fqn, field: "element size", firstRank: first.rank,
                    firstValue: "\(a.elementSize)", rank: rank, value: "\(b.elementSize)")
            }
        }
    }

    // MARK: - Dedup

    private static func dedup(
        _ identities: [Holder], ranks: [[SaveItem]], policy: SavePlanOptions.DedupPolicy
    ) -> (kept: [[Int]], weights: [Int]) {
        var counters = [Int](repeating: 0, count: ranks.count)
        var chosen = [Int](repeating: 0, count: identities.count)

        func leastLoaded(_ holders: [SaveItemReference]) -> Int {
            // Holders are in ascending rank order, so the first minimum is the lowest rank.
            var best = 0
            for candidate in holders.indices.dropFirst()
            where counters[holders[candidate].rank] < counters[holders[best].rank] {
                best = candidate
            }
            return best
        }

        switch policy {
        case .smallestPlan, .lowestRank:
            for (position, identity) in identities.enumerated() {
                let pick = policy == .lowestRank ? 0 : leastLoaded(identity.holders)
                chosen[position] = pick
                counters[identity.holders[pick].rank] &+= identity.torchWeight
            }
        case .balancedByBytes:
            var replicated: [Int] = []
            for (position, identity) in identities.enumerated() {
                if identity.holders.count == 1 {
                    counters[identity.holders[0].rank] &+= identity.chunkWeight
                } else {
                    replicated.append(position)
                }
            }
            // Stable: largest first, first appearance breaks ties.
            replicated.sort { lhs, rhs in
                let a = identities[lhs].chunkWeight
                let b = identities[rhs].chunkWeight
                return a != b ? a > b : lhs < rhs
            }
            for position in replicated {
                let pick = leastLoaded(identities[position].holders)
                chosen[position] = pick
                counters[identities[position].holders[pick].rank] &+= identities[position].chunkWeight
            }
        }

        var keep = ranks.map { [Bool](repeating: false, count: $0.count) }
        for (position, identity) in identities.enumerated() {
            let ref = identity.holders[chosen[position]]
            keep[ref.rank][ref.item] = true
        }
        let kept = keep.map { flags in flags.indices.filter { flags[$0] } }
        return (kept, counters)
    }

    // MARK: - Metadata and validation

    private static func buildMetadata(
        ranks: [[SaveItem]], kept: [[Int]], names: FQNNumbers
    ) throws(SavePlanError) -> [SaveMetadataEntry] {
        // Chunk lists are grown in a side table and attached at the end, so appending never
        // copies an enum payload (which would make this quadratic in the chunk count).
        var entries: [SaveMetadataEntry] = []
        var chunkLists: [[SaveMetadataEntry.Chunk]] = []
        // Entry position by fqn number.
        var position = [Int?](repeating: nil, count: names.count)
        for (rank, indices) in kept.enumerated() {
            for index in indices {
                let ref = SaveItemReference(rank: rank, item: index)
                let number = names.byItem[rank][index]
                switch ranks[rank][index] {
                case .bytes(let fqn, _):
                    if position[number] == nil {
                        position[number] = entries.count
                        entries.append(SaveMetadataEntry(fqn: fqn, kind: .bytes(writer: ref)))
                        chunkLists.append([])
                    }
                case .tensor(let tensor):
                    let chunk = SaveMetadataEntry.Chunk(box: tensor.chunk, writer: ref)
                    if let at = position[number] {
                        chunkLists[at].append(chunk)
                    } else {
                        position[number] = entries.count
                        let model = SaveMetadataEntry.Tensor(
                            globalShape: tensor.globalShape, elementSize: tensor.elementSize,
                            dtype: tensor.dtype, chunks: [])
                        entries.append(SaveMetadataEntry(fqn: tensor.fqn, kind: .tensor(model)))
                        chunkLists.append([chunk])
                    }
                }
            }
        }
        for at in entries.indices {
            if case .tensor(var model) = entries[at].kind {
                model.chunks = chunkLists[at]
                entries[at].kind = .tensor(model)
            }
        }
        for entry in entries {
            guard case .tensor(let tensor) = entry.kind, !tensor.globalShape.isEmpty else { continue }
            let boxes = tensor.chunks.map(\.box)
            if let (a, b) = OverlapIndex(boxes: boxes, shape: tensor.globalShape).firstOverlappingPairIncludingEmpty() {
                throw .overlappingChunks(
                    fqn: entry.fqn, first: boxes[a], firstWriter: tensor.chunks[a].writer,
                    second: boxes[b], secondWriter: tensor.chunks[b].writer)
            }
            if ranks.count > 1 {
                // Chunks are in bounds and disjoint, so the sum cannot exceed the tensor volume.
                let chunkVolume = boxes.reduce(0) { $0 &+ ($1.volume ?? 0) }
                let tensorVolume = BoxMath.volume(tensor.globalShape) ?? 0
                if chunkVolume != tensorVolume {
                    throw .incompleteCoverage(fqn: entry.fqn, chunkVolume: chunkVolume, tensorVolume: tensorVolume)
                }
            }
        }
        return entries
    }

    // MARK: - Files

    private static func assignFiles(
        rank: Int, items: [SaveItem], kept: [Int], layout: SavePlanOptions.FileLayout
    ) -> [PlannedFile] {
        switch layout {
        case .filePerItem:
            return kept.enumerated().map { PlannedFile(rank: rank, index: $0.offset, items: [$0.element]) }
        case .singleFilePerRank(let count):
            let bytesItems = kept.filter { items[$0].isBytes }
            let tensorItems = kept.filter { !items[$0].isBytes }
            if count == 1 {
                return [PlannedFile(rank: rank, index: 0, items: bytesItems + tensorItems)]
            }
            var buckets = [[Int]](repeating: [], count: count)
            for (position, index) in bytesItems.enumerated() {
                buckets[position % count].append(index)
            }
            func globalBytes(_ index: Int) -> Int {
                if case .tensor(let tensor) = items[index] { return tensor.globalByteCount ?? 0 }
                return 0
            }
            // Python's sort(reverse=True) is stable: equal sizes keep plan order.
            let sorted = tensorItems.enumerated().sorted { lhs, rhs in
                let a = globalBytes(lhs.element)
                let b = globalBytes(rhs.element)
                return a != b ? a > b : lhs.offset < rhs.offset
            }.map(\.element)
            var totals = [Int](repeating: 0, count: count)
            for index in sorted {
                var smallest = 0
                for bucket in 1..<count where totals[bucket] < totals[smallest] { smallest = bucket }
                buckets[smallest].append(index)
                totals[smallest] &+= globalBytes(index)
            }
            return buckets.enumerated().map { PlannedFile(rank: rank, index: $0.offset, items: $0.element) }
        }
    }
}
