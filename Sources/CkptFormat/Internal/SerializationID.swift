/// Reproduces `PyTorchStreamWriter::writeSerializationId` (torch 2.x), verified against the fixtures:
/// id = 20-digit `hash_combine` of `std::hash<std::string>` of every record name (without the
/// archive prefix) in the iteration order of libstdc++'s `std::unordered_set` they were inserted
/// into, followed by the 20-digit `hash_combine` of the records' CRC-32s in write order.
///
/// The set's iteration order is simulated exactly (prime rehash policy, bucket-begin insertion);
/// the prime table below covers archives of up to ~2900 records.
enum SerializationID {
    static let mul: UInt64 = (0xC6A4_A793 << 32) &+ 0x5BD1_E995

    /// libstdc++ `std::_Hash_bytes(ptr, len, 0xc70f6907)` (64-bit MurmurHash2 variant).
    static func stdHash(_ s: String) -> UInt64 {
        let b = Array(s.utf8)
        @inline(__always) func shiftMix(_ v: UInt64) -> UInt64 { v ^ (v >> 47) }
        var hash: UInt64 = 0xC70F_6907 ^ (UInt64(b.count) &* mul)
        let aligned = b.count & ~7
        var i = 0
        while i < aligned {
            var d: UInt64 = 0
            for j in 0..<8 { d |= UInt64(b[i + j]) << (8 * UInt64(j)) }
            d = shiftMix(d &* mul) &* mul
            hash ^= d
            hash = hash &* mul
            i += 8
        }
        if b.count & 7 != 0 {
            var d: UInt64 = 0
            var j = b.count - 1
            while j >= aligned {
                d = (d << 8) &+ UInt64(b[j])
                j -= 1
            }
            hash ^= d
            hash = hash &* mul
        }
        hash = shiftMix(hash) &* mul
        return shiftMix(hash)
    }

    static func combine(_ seed: UInt64, _ v: UInt64) -> UInt64 {
        seed ^ (v &+ 0x9E37_79B9 &+ (seed << 6) &+ (seed >> 2))
    }

    static let fastBuckets = [2, 2, 2, 3, 5, 5, 7, 7, 11, 11, 11, 11, 13, 13]
    static let primes = [
        2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 103, 109, 113, 127, 137, 139,
        149, 157, 167, 179, 193, 199, 211, 227, 241, 257, 277, 293, 313, 337, 359, 383, 409, 439, 467, 503, 541, 577, 619, 661, 709,
        761, 823, 887, 953, 1031, 1109, 1193, 1289, 1381, 1493, 1613, 1741, 1879, 2029, 2179, 2357, 2549, 2753, 2971,
    ]

    /// Iteration order of a libstdc++ `unordered_set<string>` after inserting `names` in order.
    static func unorderedSetOrder(_ names: [String]) -> [String] {
        let codes = names.map(stdHash)
        var next = [Int](repeating: -1, count: names.count)
        var head = -1
        var bucketCount = 1
        var nextResize = 0
        // buckets[b]: index of the node before bucket b's first node; -2 = before-begin; nil = empty.
        var buckets: [Int: Int] = [:]
        func bucket(_ i: Int) -> Int { Int(codes[i] % UInt64(bucketCount)) }
        func nextBucket(_ n: Int) -> (Int, Int) {
            if n < fastBuckets.count { return (fastBuckets[n], fastBuckets[n]) }
            let p = primes.first { $0 >= n } ?? n
            return (p, p)
        }
        func rehash(_ n: Int) {
            var p = head
            head = -1
            bucketCount = n
            var nb: [Int: Int] = [:]
            var beginBucket = 0
            while p >= 0 {
                let nx = next[p]
                let b = bucket(p)
                if let before = nb[b] {
                    if before == -2 {
                        next[p] = head
                        head = p
                    } else {
                        next[p] = next[before]
                        next[before] = p
                    }
                } else {
                    next[p] = head
                    head = p
                    nb[b] = -2
                    if next[p] >= 0 { nb[beginBucket] = p }
                    beginBucket = b
                }
                p = nx
            }
            buckets = nb
        }
        for i in names.indices {
            if i + 1 > nextResize {
                let minBuckets = Swift.max(i + 1, nextResize == 0 ? 11 : 0)
                if minBuckets >= bucketCount {
                    let (n, resize) = nextBucket(Swift.max(minBuckets + 1, bucketCount * 2))
                    nextResize = resize
                    rehash(n)
                } else {
                    nextResize = bucketCount
                }
            }
            let b = bucket(i)
            if let before = buckets[b] {
                if before == -2 {
                    next[i] = head
                    head = i
                } else {
                    next[i] = next[before]
                    next[before] = i
                }
            } else {
                next[i] = head
                head = i
                if next[i] >= 0 { buckets[bucket(next[i])] = i }
                buckets[b] = -2
            }
        }
        var order: [String] = []
        var p = head
        while p >= 0 {
            order.append(names[p])
            p = next[p]
        }
        return order
    }

    /// The 40-digit id for records written in order with the given CRC-32s.
    static func make(names: [String], crcs: [UInt32]) -> String {
        var nameHash: UInt64 = 0
        for n in unorderedSetOrder(names) { nameHash = combine(nameHash, stdHash(n)) }
        var crcHash: UInt64 = 0
        for c in crcs { crcHash = combine(crcHash, UInt64(c)) }
        return pad20(nameHash) + pad20(crcHash)
    }

    static func pad20(_ v: UInt64) -> String {
        let s = String(v)
        return String(repeating: "0", count: Swift.max(0, 20 - s.count)) + s
    }
}
