import CkptTestSupport
import Foundation
@testable import CkptFormat


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
