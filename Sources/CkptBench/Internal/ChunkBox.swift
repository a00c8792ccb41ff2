#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CkptPlan

/// A validated chunk box of a row-major tensor, decomposed into contiguous byte runs.
struct ChunkBox {
    let shape: [Int]
    let elementSize: Int
    let offsets: [Int]
    let sizes: [Int]
    /// Bytes of the chunk.
    let byteCount: Int
    /// Byte strides of the global tensor per dimension.
    let strides: [Int]

    init(fqn: String, globalShape: [Int], elementSize: Int, offsets: [Int], sizes: [Int]) throws(BenchContentError) {
        guard globalShape.count == offsets.count, globalShape.count == sizes.count else {
            throw .dimensionMismatch(fqn: fqn, shape: globalShape.count, offsets: offsets.count, sizes: sizes.count)
        }
        guard elementSize > 0 else { throw .invalidElementSize(fqn: fqn, elementSize: elementSize) }
        for dimension in globalShape.indices {
            let extent = globalShape[dimension]
            let offset = offsets[dimension]
            let size = sizes[dimension]
            guard extent >= 0, offset >= 0, size >= 0, offset <= extent, size <= extent - offset else {
                throw .outOfBounds(fqn: fqn, dimension: dimension, offset: offset, size: size, extent: extent)
            }
        }
        // Global byte size must fit (then so does every stride and the chunk size).
        var total = elementSize
        var strides = [Int](repeating: 0, count: globalShape.count)
        for dimension in globalShape.indices.reversed() {
            strides[dimension] = total
            let (product, overflow) = total.multipliedReportingOverflow(by: globalShape[dimension])
            guard !overflow else { throw .sizeOverflow(fqn: fqn) }
            total = product
        }
        self.shape = globalShape
        self.elementSize = elementSize
        self.offsets = offsets
        self.sizes = sizes
        self.strides = strides
        self.byteCount = sizes.reduce(elementSize, *)
    }

    /// Calls `body(globalByteOffset, chunkByteOffset, length)` for each maximal contiguous run, in
    /// chunk order; stops early when `body` returns false.
    func forEachRun(_ body: (Int, Int, Int) -> Bool) {
        guard byteCount > 0 else { return }
        CkptPlan.ChunkBox(offsets: offsets, sizes: sizes)
            .forEachContiguousRun(inTensorOfShape: shape, elementSize: elementSize, body)
    }

    /// Global coordinates of the element that holds global byte `offset`.
    func coordinates(ofGlobalByte offset: Int) -> [Int] {
        var remainder = offset
        return strides.map { stride in
            let coordinate = remainder / stride
            remainder -= coordinate * stride
            return coordinate
        }
    }
}

/// Writes `count` bytes of the SplitMix64 stream `seed`, starting at stream byte `start`, to `dst`.
@inline(__always)
func fillStream(seed: UInt64, from start: Int, count: Int, into dst: UnsafeMutableRawPointer) {
    var position = start
    var out = dst
    var remaining = count
    let head = position & 7
    if head != 0, remaining > 0 {
        let word = splitMixWord(seed, UInt64(position >> 3))
        let n = min(8 - head, remaining)
        for k in 0..<n {
            out.storeBytes(of: UInt8(truncatingIfNeeded: word >> UInt64(8 * (head + k))), toByteOffset: k, as: UInt8.self)
        }
        position += n
        out += n
        remaining -= n
    }
    let words = remaining >> 3
    let first = UInt64(position >> 3)
    var k = 0
    while k < words {
        out.storeBytes(of: splitMixWord(seed, first &+ UInt64(k)).littleEndian, toByteOffset: k << 3, as: UInt64.self)
        k += 1
    }
    let tailStart = words << 3
    let tail = remaining - tailStart
    if tail > 0 {
        let word = splitMixWord(seed, first &+ UInt64(words))
        for k in 0..<tail {
            out.storeBytes(of: UInt8(truncatingIfNeeded: word >> UInt64(8 * k)), toByteOffset: tailStart + k, as: UInt8.self)
        }
    }
}
