import CkptTestSupport
import Testing

@testable import CkptPlan

/// ``StreamCopyPlanner`` on random layouts: the plan, run the way the consolidator's copier runs
/// it (windows read in order into `peakLiveWindows` buffers, each freed after its last image),
/// rebuilds exactly the output the runs describe, reads each window once, and never waits for a
/// buffer that only a later image frees.
@Suite struct StreamCopyPlannerTests {
    struct Layout {
        var files: [[UInt8]]
        var literals: [[UInt8]]
        var runs: [StreamCopyRun]
        var outputLength: Int
    }

    /// Files of random bytes, and an output of runs (from random places of random files, or
    /// literals) separated by random gaps (bytes the caller fills).
    static func randomLayout(_ rng: inout SplitMix64) -> Layout {
        let files = (0..<rng.int(1...5)).map { _ in rng.bytes(rng.int(1...3000)) }
        let literals = (0..<rng.int(0...2)).map { _ in rng.bytes(rng.int(1...200)) }
        var runs: [StreamCopyRun] = []
        var at = rng.int(0...100)
        for _ in 0..<rng.int(0...40) {
            let source: StreamCopyRun.Source
            let length: Int
            if !literals.isEmpty, rng.chance(0.15) {
                let l = rng.int(0...(literals.count - 1))
                length = rng.int(0...literals[l].count)
                source = .literal(l, offset: rng.int(0...(literals[l].count - length)))
            } else {
                let f = rng.int(0...(files.count - 1))
                length = rng.int(0...min(files[f].count, 700))
                source = .file(f, offset: rng.int(0...(files[f].count - length)))
            }
            runs.append(StreamCopyRun(outputOffset: at, length: length, source: source))
            at += length + (rng.chance(0.5) ? 0 : rng.int(0...64))
        }
        runs.shuffle(using: &rng)
        return Layout(files: files, literals: literals, runs: runs, outputLength: at + rng.int(0...50))
    }

    /// The output the runs describe (gaps zero).
    static func expected(_ layout: Layout) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: layout.outputLength)
        for run in layout.runs where run.length > 0 {
            switch run.source {
            case .file(let f, let o): out[run.outputOffset..<(run.outputOffset + run.length)] = layout.files[f][o..<(o + run.length)]
            case .literal(let l, let o): out[run.outputOffset..<(run.outputOffset + run.length)] = layout.literals[l][o..<(o + run.length)]
            }
        }
        return out
    }

    /// Runs the plan with `buffers` window buffers as the copier does; nil when an image needs a
    /// window that no free buffer can take.
    static func execute(_ plan: StreamCopyPlan, _ layout: Layout, buffers: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: plan.outputLength)
        var held: [Int: [UInt8]] = [:]
        var free = buffers
        var next = 0
        for image in plan.images {
            while next < plan.windows.count, free > 0 {
                let w = plan.windows[next]
                held[next] = Array(layout.files[w.file][w.offset..<(w.offset + w.length)])
                free -= 1
                next += 1
            }
            for piece in image.pieces {
                let target = image.offset + piece.imageOffset
                switch piece.source {
                case .window(let w, let offset):
                    guard let bytes = held[w] else { return nil }
                    out[target..<(target + piece.length)] = bytes[offset..<(offset + piece.length)]
                case .literal(let l, let offset):
                    out[target..<(target + piece.length)] = layout.literals[l][offset..<(offset + piece.length)]
                }
            }
            for w in image.releases {
                held[w] = nil
                free += 1
            }
        }
        return held.isEmpty && next == plan.windows.count ? out : nil
    }

    @Test(arguments: 0..<300)
    func randomLayoutsCopyExactly(seed: Int) throws {
        var rng = SplitMix64(seed: UInt64(seed))
        let layout = Self.randomLayout(&rng)
        let alignment = rng.pick([1, 8, 16])
        let window = alignment * rng.int(1...40)
        let image = alignment * rng.int(1...40)
        let plan = try StreamCopyPlanner.plan(
            runs: layout.runs, outputLength: layout.outputLength, fileSizes: layout.files.map(\.count),
            literalSizes: layout.literals.map(\.count), windowSize: window, imageSize: image, alignment: alignment)

        // Images tile the output in order.
        var at = 0
        for (k, i) in plan.images.enumerated() {
            #expect(i.offset == at && i.offset == k * image && i.length > 0 && i.length <= image)
            at += i.length
            var end = 0
            for p in i.pieces {
                #expect(p.imageOffset >= end && p.length > 0 && p.imageOffset + p.length <= i.length)
                end = p.imageOffset + p.length
            }
        }
        #expect(at == layout.outputLength)
        // Windows: aligned, inside one window-sized block of their file, in first-use order.
        var first = 0
        for w in plan.windows {
            let size = layout.files[w.file].count
            #expect(w.offset % alignment == 0 && w.length > 0 && w.offset + w.length <= size)
            #expect((w.offset + w.length) % alignment == 0 || w.offset + w.length == size)
            #expect(w.offset / window == (w.offset + w.length - 1) / window)
            #expect(w.firstImage >= first && w.firstImage <= w.lastImage)
            first = w.firstImage
        }
        #expect(Set(plan.windows.map { [$0.file, $0.offset / window] }).count == plan.windows.count, "a block read twice")
        #expect(plan.images.flatMap(\.releases).sorted() == Array(plan.windows.indices))
        // The copy is exact with the plan's peak of buffers, and the peak is needed.
        let copied = Self.execute(plan, layout, buffers: max(1, plan.peakLiveWindows))
        #expect(copied == Self.expected(layout))
        if plan.peakLiveWindows > 1 {
            #expect(Self.execute(plan, layout, buffers: plan.peakLiveWindows - 1) == nil)
        }
    }

    @Test func wholeFilesInOrderAreOneWindowPerBlock() throws {
        // Four 10-block files concatenated: each window read once, one window live at a time.
        let runs = (0..<4).map { StreamCopyRun(outputOffset: $0 * 40960, length: 40960, source: .file($0, offset: 0)) }
        let plan = try StreamCopyPlanner.plan(
            runs: runs, outputLength: 4 * 40960, fileSizes: [40960, 40960, 40960, 40960], windowSize: 8192, imageSize: 8192)
        #expect(plan.windows.count == 20 && plan.images.count == 20)
        #expect(plan.readBytes == 4 * 40960)
        #expect(plan.peakLiveWindows == 1)
    }

    @Test func badRunsAreRefused() {
        func plan(_ runs: [StreamCopyRun], length: Int = 100, window: Int = 4096) -> StreamCopyPlanError? {
            do {
                _ = try StreamCopyPlanner.plan(runs: runs, outputLength: length, fileSizes: [50], literalSizes: [10], windowSize: window, imageSize: 4096)
                return nil
            } catch {
                return error
            }
        }
        let overlapping = [
            StreamCopyRun(outputOffset: 0, length: 20, source: .file(0, offset: 0)),
            StreamCopyRun(outputOffset: 10, length: 5, source: .literal(0, offset: 0)),
        ]
        #expect(plan(overlapping).map { "\($0)".contains("overlaps") } == true)
        #expect(plan([StreamCopyRun(outputOffset: 90, length: 20, source: .file(0, offset: 0))]).map { "\($0)".contains("ends past") } == true)
        #expect(plan([StreamCopyRun(outputOffset: 0, length: 20, source: .file(0, offset: 40))]) == .sourceOutOfBounds(
            StreamCopyRun(outputOffset: 0, length: 20, source: .file(0, offset: 40)), fileSize: 50))
        #expect(plan([StreamCopyRun(outputOffset: 0, length: 5, source: .file(3, offset: 0))]).map { "\($0)".contains("no known file") } == true)
        #expect(plan([StreamCopyRun(outputOffset: 0, length: 11, source: .literal(0, offset: 0))]) != nil)
        #expect(plan([StreamCopyRun(outputOffset: -1, length: 5, source: .file(0, offset: 0))]) != nil)
        #expect(plan([], window: 1000) == .invalidSizes("window size 1000 is not a positive multiple of 4096"))
        #expect(plan([], length: 0) == nil)
    }
}
