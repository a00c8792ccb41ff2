#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Deterministic, position-addressable tensor content.
///
/// Byte `i` (row-major, densely packed) of tensor `T` is byte `i % 8` (little-endian) of
/// `SplitMix64(seed(T))` output number `i / 8`, where `seed(T)` hashes the tensor's name with
/// ``seed``. Any chunk of any layout can therefore be generated on its own, and a loaded buffer can
/// be checked without keeping the original. Generation writes 8 bytes per hash, a whole contiguous
/// run at a time.
public struct BenchContent: Sendable, Hashable {
    /// The seed used when none is given.
    public static let defaultSeed: UInt64 = 0x636B_7074_6265_6E63

    /// The seed mixed into every tensor's stream.
    public let seed: UInt64

    /// Creates a content generator.
    public init(seed: UInt64 = BenchContent.defaultSeed) {
        self.seed = seed
    }

    /// The stream seed of the tensor named `fqn`.
    public func tensorSeed(fqn: String) -> UInt64 {
        fnv1a64(fqn, seed: seed)
    }

    /// Writes the bytes that the global tensor holds in the box `offsets`/`sizes` into the start of
    /// `buffer`, row-major and densely packed (the chunk's own layout).
    public func fill(
        fqn: String,
        globalShape: [Int],
        elementSize: Int,
        offsets: [Int],
        sizes: [Int],
        into buffer: UnsafeMutableRawBufferPointer
    ) throws(BenchContentError) {
        let box = try ChunkBox(
            fqn: fqn, globalShape: globalShape, elementSize: elementSize, offsets: offsets, sizes: sizes)
        guard buffer.count >= box.byteCount else {
            throw .bufferTooSmall(fqn: fqn, needed: box.byteCount, actual: buffer.count)
        }
        guard box.byteCount > 0, let base = buffer.baseAddress else { return }
        let streamSeed = tensorSeed(fqn: fqn)
        box.forEachRun { global, local, length in
            fillStream(seed: streamSeed, from: global, count: length, into: base + local)
            return true
        }
    }

    /// Fills `buffer` with the content of `chunk`.
    public func fill(_ chunk: BenchChunk, into buffer: UnsafeMutableRawBufferPointer) throws(BenchContentError) {
        try fill(
            fqn: chunk.fqn, globalShape: chunk.globalShape, elementSize: chunk.dtype.elementSize,
            offsets: chunk.offsets, sizes: chunk.sizes, into: buffer)
    }

    /// Checks that `buffer` starts with the content of the box `offsets`/`sizes` of the tensor.
    ///
    /// - Returns: `nil` when every byte matches, otherwise the first differing byte.
    public func verify(
        fqn: String,
        globalShape: [Int],
        elementSize: Int,
        offsets: [Int],
        sizes: [Int],
        buffer: UnsafeRawBufferPointer
    ) throws(BenchContentError) -> BenchContentMismatch? {
        let box = try ChunkBox(
            fqn: fqn, globalShape: globalShape, elementSize: elementSize, offsets: offsets, sizes: sizes)
        guard buffer.count >= box.byteCount else {
            throw .bufferTooSmall(fqn: fqn, needed: box.byteCount, actual: buffer.count)
        }
        guard box.byteCount > 0, let base = buffer.baseAddress else { return nil }
        let streamSeed = tensorSeed(fqn: fqn)
        let scratchSize = 1 << 16
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: scratchSize, alignment: 16)
        defer { scratch.deallocate() }
        guard let scratchBase = scratch.baseAddress else { return nil }
        var mismatch: BenchContentMismatch?
        box.forEachRun { global, local, length in
            var done = 0
            while done < length {
                let step = min(scratchSize, length - done)
                fillStream(seed: streamSeed, from: global + done, count: step, into: scratchBase)
                let actual = base + local + done
                if memcmp(scratchBase, actual, step) != 0 {
                    for k in 0..<step {
                        let want = scratchBase.load(fromByteOffset: k, as: UInt8.self)
                        let got = actual.load(fromByteOffset: k, as: UInt8.self)
                        if want != got {
                            let globalByte = global + done + k
                            mismatch = BenchContentMismatch(
                                fqn: fqn, globalByteOffset: globalByte, bufferByteOffset: local + done + k,
                                elementCoordinates: box.coordinates(ofGlobalByte: globalByte),
                                expected: want, actual: got)
                            return false
                        }
                    }
                }
                done += step
            }
            return true
        }
        return mismatch
    }

    /// Checks `buffer` against the content of `chunk`.
    public func verify(_ chunk: BenchChunk, buffer: UnsafeRawBufferPointer) throws(BenchContentError)
        -> BenchContentMismatch?
    {
        try verify(
            fqn: chunk.fqn, globalShape: chunk.globalShape, elementSize: chunk.dtype.elementSize,
            offsets: chunk.offsets, sizes: chunk.sizes, buffer: buffer)
    }
}
