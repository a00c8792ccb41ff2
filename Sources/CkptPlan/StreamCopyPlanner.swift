/// Plans a streaming copy of byte runs of data files (and of literals the caller holds) into one
/// output file: an output made of many small runs scattered over several files (a consolidation
/// of a sharded checkpoint, where each tensor is the concatenation of its shards) becomes reads of
/// whole source windows and writes of whole output images. Pure: no I/O.
///
/// Each run is cut at image boundaries and, for file runs, at window boundaries (windows are the
/// `windowSize`-aligned ranges of a file, trimmed to the bytes some run needs and rounded to the
/// alignment). Windows are numbered in the order the images first need them.
public enum StreamCopyPlanner {
    public static func plan(
        runs: [StreamCopyRun], outputLength: Int, fileSizes: [Int], literalSizes: [Int] = [],
        windowSize: Int, imageSize: Int, alignment: Int = 4096
    ) throws(StreamCopyPlanError) -> StreamCopyPlan {
        guard alignment > 0 else { throw .invalidSizes("alignment must be positive, got \(alignment)") }
        guard windowSize > 0, windowSize % alignment == 0 else {
            throw .invalidSizes("window size \(windowSize) is not a positive multiple of \(alignment)")
        }
        guard imageSize > 0, imageSize % alignment == 0 else {
            throw .invalidSizes("image size \(imageSize) is not a positive multiple of \(alignment)")
        }
        guard outputLength >= 0 else { throw .invalidSizes("output length \(outputLength) is negative") }

        for run in runs {
            guard run.length >= 0, run.outputOffset >= 0 else {
                throw .invalidRun(run, reason: "negative offset or length")
            }
            let end = run.outputOffset.addingReportingOverflow(run.length)
            guard !end.overflow, end.partialValue <= outputLength else {
                throw .invalidRun(run, reason: "ends past the output's \(outputLength) bytes")
            }
            let (id, offset, sizes) = switch run.source {
            case .file(let f, let o): (f, o, fileSizes)
            case .literal(let l, let o): (l, o, literalSizes)
            }
            guard sizes.indices.contains(id) else { throw .sourceOutOfBounds(run, fileSize: nil) }
            let sourceEnd = offset.addingReportingOverflow(run.length)
            guard offset >= 0, !sourceEnd.overflow, sourceEnd.partialValue <= sizes[id] else {
                throw .sourceOutOfBounds(run, fileSize: sizes[id])
            }
        }
        var sorted = runs.filter { $0.length > 0 }
        // Callers usually give the runs in output order already.
        if zip(sorted, sorted.dropFirst()).contains(where: { $0.outputOffset > $1.outputOffset }) {
            sorted.sort { $0.outputOffset < $1.outputOffset }
        }
        for (previous, run) in zip(sorted, sorted.dropFirst()) where previous.outputOffset + previous.length > run.outputOffset {
            throw .invalidRun(run, reason: "overlaps output bytes \(previous.outputOffset)..<\(previous.outputOffset + previous.length)")
        }

        let imageCount = (outputLength + imageSize - 1) / imageSize
        var images: [StreamCopyPlan.Image] = []
        images.reserveCapacity(imageCount)
        for k in 0..<imageCount {
            images.append(.init(offset: k * imageSize, length: min(imageSize, outputLength - k * imageSize), pieces: [], releases: []))
        }
        struct Key: Hashable {
            var file: Int
            var index: Int
        }
        var ids: [Key: Int] = [:]
        var windows: [StreamCopyPlan.Window] = []
        var needed: [(low: Int, high: Int)] = []
        var lastWindow: (key: Key, id: Int)?
        for run in sorted {
            var out = run.outputOffset
            var remaining = run.length
            var from: Int
            switch run.source {
            case .file(_, let o), .literal(_, let o): from = o
            }
            while remaining > 0 {
                let k = out / imageSize
                var n = min(remaining, images[k].offset + images[k].length - out)
                let source: StreamCopyPlan.Piece.Source
                switch run.source {
                case .literal(let l, _):
                    source = .literal(l, offset: from)
                case .file(let f, _):
                    let index = from / windowSize
                    n = min(n, (index + 1) * windowSize - from)
                    let key = Key(file: f, index: index)
                    let id: Int
                    // Consecutive pieces mostly come from the same window: skip the table then.
                    if let last = lastWindow, last.key == key {
                        id = last.id
                    } else if let known = ids[key] {
                        id = known
                    } else {
                        id = windows.count
                        ids[key] = id
                        windows.append(.init(file: f, offset: 0, length: 0, firstImage: k, lastImage: k))
                        needed.append((from, from + n))
                    }
                    needed[id].low = min(needed[id].low, from)
                    needed[id].high = max(needed[id].high, from + n)
                    windows[id].lastImage = k
                    lastWindow = (key, id)
                    // The file offset for now; made relative to the window once its range is known.
                    source = .window(id, offset: from)
                }
                images[k].pieces.append(.init(source: source, imageOffset: out - images[k].offset, length: n))
                out += n
                from += n
                remaining -= n
            }
        }
        for id in windows.indices {
            let start = needed[id].low / alignment * alignment
            let end = min((needed[id].high + alignment - 1) / alignment * alignment, fileSizes[windows[id].file])
            windows[id].offset = start
            windows[id].length = end - start
            images[windows[id].lastImage].releases.append(id)
        }
        var change = [Int](repeating: 0, count: imageCount + 1)
        for id in images.indices {
            for p in images[id].pieces.indices {
                guard case .window(let w, let offset) = images[id].pieces[p].source else { continue }
                images[id].pieces[p].source = .window(w, offset: offset - windows[w].offset)
            }
        }
        for window in windows {
            change[window.firstImage] += 1
            change[window.lastImage + 1] -= 1
        }
        var live = 0
        var peak = 0
        for delta in change {
            live += delta
            peak = max(peak, live)
        }
        return StreamCopyPlan(
            windows: windows, images: images, outputLength: outputLength, windowSize: windowSize, imageSize: imageSize,
            peakLiveWindows: peak)
    }
}
