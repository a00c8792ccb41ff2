/// Turns one overlap into copy runs, one per row of the intersection after merging trailing
/// dimensions that are full on both sides. Work is per run, never per element.
enum RunBuilder {
    static func appendRuns(
        overlap: ChunkOverlap,
        savedSizes: [Int],
        local: LocalChunk,
        elementSize: Int,
        payload: PayloadLocation,
        into runs: inout [CopyRun]
    ) {
        let lengths = overlap.lengths
        let count = lengths.count
        guard count > 0 else {
            runs.append(
                CopyRun(
                    file: payload.file, sourceOffset: payload.offset, destination: local.destination,
                    destinationOffset: local.baseOffset, length: elementSize))
            return
        }
        if lengths.contains(0) { return }
        let destinationSizes = local.box.sizes
        let sourceStrides = BoxMath.strides(savedSizes)
        let destinationStrides = BoxMath.strides(destinationSizes)

        // Smallest k such that every dimension after k is full in both layouts.
        var k = count - 1
        while k > 0, lengths[k] == savedSizes[k], lengths[k] == destinationSizes[k] { k -= 1 }
        var runElements = 1
        for dim in k..<count { runElements &*= lengths[dim] }
        let runBytes = runElements &* elementSize

        var source = 0
        var destination = 0
        for dim in 0..<count {
            source &+= overlap.storageOffsets[dim] &* sourceStrides[dim]
            destination &+= overlap.destinationOffsets[dim] &* destinationStrides[dim]
        }
        source = payload.offset &+ source &* elementSize
        destination = local.baseOffset &+ destination &* elementSize

        // No exact reserveCapacity here: called once per overlap, it would defeat geometric growth.
        // Odometer over the outer dimensions 0..<k.
        var sourceStep = [Int](repeating: 0, count: k)
        var destinationStep = [Int](repeating: 0, count: k)
        for dim in 0..<k {
            sourceStep[dim] = sourceStrides[dim] &* elementSize
            destinationStep[dim] = destinationStrides[dim] &* elementSize
        }
        var index = [Int](repeating: 0, count: k)
        while true {
            runs.append(
                CopyRun(
                    file: payload.file, sourceOffset: source, destination: local.destination,
                    destinationOffset: destination, length: runBytes))
            var dim = k - 1
            while dim >= 0 {
                index[dim] += 1
                source &+= sourceStep[dim]
                destination &+= destinationStep[dim]
                if index[dim] < lengths[dim] { break }
                source &-= sourceStep[dim] &* lengths[dim]
                destination &-= destinationStep[dim] &* lengths[dim]
                index[dim] = 0
                dim -= 1
            }
            if dim < 0 { break }
        }
    }
}
