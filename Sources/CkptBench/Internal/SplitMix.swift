/// The SplitMix64 output function applied to a counter: a fast, well-mixed, stateless hash.
///
/// `splitMixWord(seed, index)` equals the `index`-th output (0-based) of a SplitMix64 generator
/// seeded with `seed`, so any word of a stream can be computed without the ones before it.
@inline(__always)
func splitMixWord(_ seed: UInt64, _ index: UInt64) -> UInt64 {
    var z = seed &+ (index &+ 1) &* 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// FNV-1a over the UTF-8 bytes of `string`, mixed with `seed`.
func fnv1a64(_ string: String, seed: UInt64) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
    for byte in string.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    return splitMixWord(hash, 0)
}
