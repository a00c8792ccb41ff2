import Foundation
@testable import CkptFormat

/// Deterministic PRNG for property tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Fixtures {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func bytes(_ relative: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent(relative)))
    }

    /// Parsed on each call (the manifest is small); `[String: Any]` is not Sendable, so no static cache.
    static var manifest: [String: Any] {
        guard let data = try? Data(contentsOf: root.appendingPathComponent("manifest.json")),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return obj
    }

    static var fixtures: [[String: Any]] { manifest["fixtures"] as? [[String: Any]] ?? [] }

    static func fixture(_ name: String) -> [String: Any]? {
        fixtures.first { $0["name"] as? String == name }
    }

    static var dcpFixtureNames: [String] {
        fixtures.filter { ($0["kind"] as? String) == "dcp" || ($0["kind"] as? String) == "lightning_sharded" }.compactMap { $0["name"] as? String }
    }
}

/// Compact SHA-256 (FIPS 180-4) for test verification.
enum SHA256 {
    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ message: [UInt8]) -> String {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var m = message
        let bitLen = UInt64(message.count) * 8
        m.append(0x80)
        while m.count % 64 != 56 { m.append(0) }
        for i in (0..<8).reversed() { m.append(UInt8(truncatingIfNeeded: bitLen >> (UInt64(i) * 8))) }
        var w = [UInt32](repeating: 0, count: 64)
        for chunk in stride(from: 0, to: m.count, by: 64) {
            for i in 0..<16 {
                w[i] = UInt32(m[chunk + 4 * i]) << 24 | UInt32(m[chunk + 4 * i + 1]) << 16 | UInt32(m[chunk + 4 * i + 2]) << 8 | UInt32(m[chunk + 4 * i + 3])
            }
            for i in 16..<64 {
                let s0 = w[i - 15].rotr(7) ^ w[i - 15].rotr(18) ^ (w[i - 15] >> 3)
                let s1 = w[i - 2].rotr(17) ^ w[i - 2].rotr(19) ^ (w[i - 2] >> 10)
                w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
            for i in 0..<64 {
                let s1 = e.rotr(6) ^ e.rotr(11) ^ e.rotr(25)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
                let s0 = a.rotr(2) ^ a.rotr(13) ^ a.rotr(22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ maj
                hh = g
                g = f
                f = e
                e = d &+ t1
                d = c
                c = b
                b = a
                a = t1 &+ t2
            }
            h[0] &+= a
            h[1] &+= b
            h[2] &+= c
            h[3] &+= d
            h[4] &+= e
            h[5] &+= f
            h[6] &+= g
            h[7] &+= hh
        }
        return h.map { String(format: "%08x", $0) }.joined()
    }
}

extension UInt32 {
    func rotr(_ n: UInt32) -> UInt32 { (self >> n) | (self << (32 - n)) }
}

/// Copies a chunk (row-major, `chunkSizes`) into a global row-major buffer at `offsets`.
func place(chunk: [UInt8], sizes: [Int], offsets: [Int], into global: inout [UInt8], globalShape: [Int], itemSize: Int) {
    let rank = globalShape.count
    if rank == 0 {
        global.replaceSubrange(0..<itemSize, with: chunk.prefix(itemSize))
        return
    }
    if sizes.contains(0) { return }
    var gStrides = [Int](repeating: 1, count: rank)
    for i in stride(from: rank - 2, through: 0, by: -1) { gStrides[i] = gStrides[i + 1] * globalShape[i + 1] }
    let rowLen = sizes[rank - 1] * itemSize
    let rows = sizes.dropLast().reduce(1, *)
    var idx = [Int](repeating: 0, count: rank - 1)
    for r in 0..<rows {
        var g = offsets[rank - 1]
        for d in 0..<(rank - 1) { g += (offsets[d] + idx[d]) * gStrides[d] }
        global.replaceSubrange((g * itemSize)..<(g * itemSize + rowLen), with: chunk[(r * rowLen)..<((r + 1) * rowLen)])
        var d = rank - 2
        while d >= 0 {
            idx[d] += 1
            if idx[d] < sizes[d] { break }
            idx[d] = 0
            d -= 1
        }
    }
}

/// Python `repr` of a decoded value (enough for the fixtures' values).
func pyRepr(_ v: TorchValue) -> String {
    switch v {
    case .none: return "None"
    case .bool(let b): return b ? "True" : "False"
    case .int(let i): return String(i)
    case .float(let d):
        var s = "\(d)"
        if s.hasSuffix(".0") && s.contains("e") { s.removeLast(2) }
        return s
    case .string(let s): return "'" + s + "'"
    case .list(let a): return "[" + a.map(pyRepr).joined(separator: ", ") + "]"
    case .tuple(let a): return a.count == 1 ? "(" + pyRepr(a[0]) + ",)" : "(" + a.map(pyRepr).joined(separator: ", ") + ")"
    case .dict(let e): return "{" + e.map { pyRepr($0.key) + ": " + pyRepr($0.value) }.joined(separator: ", ") + "}"
    case .bytes(let b): return "b'" + b.map { String(format: "\\x%02x", $0) }.joined() + "'"
    default: return "<\(v)>"
    }
}

extension Array where Element == UInt8 {
    func slice(_ offset: Int, _ length: Int) -> [UInt8] { Array(self[offset..<(offset + length)]) }
}
