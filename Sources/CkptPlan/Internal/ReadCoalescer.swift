/// Collects copy runs grouped in units (one saved payload or BYTE_IO record each) and turns them
/// into reads: merge adjacent or overlapping runs, bridge the smallest gaps within a global byte
/// budget, split at the maximum read size, then scatter runs over the reads.
struct ReadCoalescer {
    var runs: [CopyRun] = []
    private var units: [(file: Int, range: Range<Int>)] = []
    private var unitStart = 0
    private var unitFile = 0

    mutating func beginUnit(file: Int) {
        unitStart = runs.count
        unitFile = file
    }

    mutating func endUnit() {
        if runs.count > unitStart { units.append((unitFile, unitStart..<runs.count)) }
    }

    mutating func makePlan(neededBytes: Int, gapBudget: Int, maxReadSize: Int) -> ReadPlan {
        for unit in units {
            runs[unit.range].sort {
                ($0.sourceOffset, $0.destination, $0.destinationOffset)
                    < ($1.sourceOffset, $1.destination, $1.destinationOffset)
            }
        }

        // Candidate gaps: between the end of everything before a run and the run, per unit.
        var gaps: [(size: Int, run: Int)] = []
        for unit in units {
            var end = runs[unit.range.lowerBound].sourceOffset &+ runs[unit.range.lowerBound].length
            for position in unit.range.dropFirst() {
                let run = runs[position]
                if run.sourceOffset > end { gaps.append((run.sourceOffset - end, position)) }
                end = max(end, run.sourceOffset &+ run.length)
            }
        }
        gaps.sort { ($0.size, $0.run) < ($1.size, $1.run) }
        var bridged = [Bool](repeating: false, count: runs.count)
        var spent = 0
        for gap in gaps {
            guard spent + gap.size <= gapBudget else { break }
            spent += gap.size
            bridged[gap.run] = true
        }

        var readsByFile: [Int: [PlannedRead]] = [:]
        var readBytes = 0
        var intervals: [(start: Int, end: Int)] = []
        for unit in units {
            intervals.removeAll(keepingCapacity: true)
            var start = 0
            var end = 0
            var open = false
            for position in unit.range {
                let runStart = runs[position].sourceOffset
                let runEnd = runStart &+ runs[position].length
                if !open {
                    (start, end, open) = (runStart, runEnd, true)
                } else if runStart <= end {
                    end = max(end, runEnd)
                } else if bridged[position], runEnd - start <= maxReadSize {
                    end = runEnd
                } else {
                    intervals.append((start, end))
                    (start, end) = (runStart, runEnd)
                }
                while end - start > maxReadSize {
                    intervals.append((start, start + maxReadSize))
                    start += maxReadSize
                }
            }
            if open { intervals.append((start, end)) }

            var scatters = [[ScatterEntry]](repeating: [], count: intervals.count)
            for position in unit.range {
                let run = runs[position]
                let runEnd = run.sourceOffset + run.length
                // First interval ending after the run's start.
                var low = 0
                var high = intervals.count
                while low < high {
                    let mid = (low + high) / 2
                    if intervals[mid].end <= run.sourceOffset { low = mid + 1 } else { high = mid }
                }
                var slot = low
                while slot < intervals.count, intervals[slot].start < runEnd {
                    let pieceStart = max(run.sourceOffset, intervals[slot].start)
                    let pieceEnd = min(runEnd, intervals[slot].end)
                    scatters[slot].append(
                        ScatterEntry(
                            bufferOffset: pieceStart - intervals[slot].start, destination: run.destination,
                            destinationOffset: run.destinationOffset + (pieceStart - run.sourceOffset),
                            length: pieceEnd - pieceStart))
                    slot += 1
                }
            }
            for (slot, interval) in intervals.enumerated() {
                readsByFile[unit.file, default: []].append(
                    PlannedRead(offset: interval.start, length: interval.end - interval.start, scatter: scatters[slot]))
                readBytes += interval.end - interval.start
            }
        }

        let files = readsByFile.keys.sorted().map { file in
            FileReadPlan(
                file: file,
                reads: (readsByFile[file] ?? []).sorted { ($0.offset, $0.length) < ($1.offset, $1.length) })
        }
        return ReadPlan(files: files, neededBytes: neededBytes, readBytes: readBytes, runCount: runs.count)
    }
}
