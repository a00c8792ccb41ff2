/// The collectives a checkpoint needs from the job's process group: gather to a root, broadcast from a
/// root, and a barrier. Payloads are opaque bytes, so an implementation can cross process and machine
/// boundaries (MPI) as easily as task boundaries (``InProcessGroup``); the engine never assumes that
/// ranks share memory.
///
/// Every rank must call the same collectives in the same order (as with MPI). A rank that hits an
/// error keeps taking part and reports the error through the payload, so that no rank is left waiting.
public protocol Communicator: Sendable {
    /// This rank's index, `0..<worldSize`.
    var rank: Int { get }
    /// Number of ranks taking part.
    var worldSize: Int { get }
    /// Gathers one payload from every rank onto `root`. Returns the payloads in rank order on `root`,
    /// `nil` elsewhere.
    func gather(_ payload: [UInt8], root: Int) async throws -> [[UInt8]]?
    /// Sends `payload` from `root` to every rank; non-root ranks pass `nil`. Returns the root's payload.
    func broadcast(_ payload: [UInt8]?, root: Int) async throws -> [UInt8]
    /// Returns once every rank has entered the barrier.
    func barrier() async throws
}

extension Communicator {
    /// Every rank gets every rank's payload, in rank order (gather to 0, then broadcast).
    public func allGather(_ payload: [UInt8]) async throws -> [[UInt8]] {
        let gathered = try await gather(payload, root: 0)
        let packed = gathered.map { FramedBytes.pack($0) }
        return try FramedBytes.unpack(try await broadcast(packed, root: 0))
    }
}

/// Length-prefixed packing of a list of byte strings into one (for collectives over bytes).
enum FramedBytes {
    static func pack(_ parts: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(parts.reduce(8) { $0 + 8 + $1.count })
        appendU64(&out, UInt64(parts.count))
        for part in parts {
            appendU64(&out, UInt64(part.count))
            out.append(contentsOf: part)
        }
        return out
    }

    static func unpack(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var cursor = 0
        func u64() throws -> Int {
            guard cursor + 8 <= bytes.count else { throw CheckpointError.protocolViolation("truncated framed payload") }
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[cursor + i]) << (8 * UInt64(i)) }
            cursor += 8
            guard v <= UInt64(bytes.count) else { throw CheckpointError.protocolViolation("framed length \(v) exceeds payload") }
            return Int(v)
        }
        let count = try u64()
        var parts: [[UInt8]] = []
        parts.reserveCapacity(count)
        for _ in 0..<count {
            let n = try u64()
            guard cursor + n <= bytes.count else { throw CheckpointError.protocolViolation("truncated framed payload") }
            parts.append(Array(bytes[cursor..<(cursor + n)]))
            cursor += n
        }
        return parts
    }

    private static func appendU64(_ out: inout [UInt8], _ v: UInt64) {
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}
