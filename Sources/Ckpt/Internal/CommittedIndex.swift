import CCkptHash

/// `.ckpt-index`: the decoded `.metadata` and checksum sidecar of one save in their binary wire
/// form (a ``CommittedMessage``), written next to them at commit, so that a load does not decode
/// the pickle and the JSON again. Decoding those takes several milliseconds on a large model, and
/// every rank waits for it before its first read; the wire form is broadcast to the ranks as it is.
///
/// It is a cache, never the source of truth: a load uses it only when its header names the exact
/// lengths and XXH3-64 hashes of the `.metadata` and sidecar bytes it has just read, the XXH3-64 of
/// its own body, and this version's wire format. Anything else (missing, torn, left over from
/// another save, written by another version) is ignored and the pickle is decoded, so PyTorch (which
/// ignores the file) can overwrite the checkpoint without confusing a later load.
///
/// Layout, integers little-endian: `CKPTIDX1`, then six u64: `.metadata` length and XXH3-64, sidecar
/// length and XXH3-64 (0 and 0 without a sidecar), body length and XXH3-64; then the body.
enum CommittedIndex {
    static let fileName = ".ckpt-index"
    static let magic: [UInt8] = Array("CKPTIDX1".utf8)
    static let headerSize = 8 + 6 * 8

    /// The index of a save whose `.metadata` and sidecar are `metadata` and `sidecar` (empty: none),
    /// holding `message` (the wire bytes of a committed ``CommittedMessage``).
    static func encode(metadata: [UInt8], sidecar: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = magic
        out.reserveCapacity(headerSize + message.count)
        for value in [
            UInt64(metadata.count), hash(metadata), UInt64(sidecar.count), sidecar.isEmpty ? 0 : hash(sidecar),
            UInt64(message.count), hash(message),
        ] {
            withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
        }
        out.append(contentsOf: message)
        return out
    }

    /// The wire bytes held by `index` if it belongs to exactly these `.metadata` and sidecar bytes
    /// and is whole and of this wire version; nil otherwise.
    static func message(in index: [UInt8], metadata: [UInt8], sidecar: [UInt8]) -> [UInt8]? {
        guard index.count >= headerSize, index.starts(with: magic) else { return nil }
        func field(_ k: Int) -> UInt64 {
            var value: UInt64 = 0
            for i in 0..<8 { value |= UInt64(index[magic.count + k * 8 + i]) << (8 * UInt64(i)) }
            return value
        }
        let bodyCount = index.count - headerSize
        guard field(0) == UInt64(metadata.count), field(2) == UInt64(sidecar.count), field(4) == UInt64(bodyCount),
            bodyCount >= 4
        else { return nil }
        let body = Array(index[headerSize...])
        guard body[0] == WireFormat.magic.0, body[1] == WireFormat.magic.1,
            body[2] == WireTag.committed.rawValue, body[3] == WireFormat.version,
            field(1) == hash(metadata), field(3) == (sidecar.isEmpty ? 0 : hash(sidecar)), field(5) == hash(body)
        else { return nil }
        return body
    }

    /// Whether an index of `size` bytes is worth reading next to a `.metadata` and a sidecar of
    /// these sizes (nil: unknown or absent): at most twice their sum plus 1 MiB, where the index
    /// that ckpt writes is well under their sum.
    static func plausibleSize(_ size: Int?, metadata: Int?, sidecar: Int?) -> Bool {
        guard let size, let metadata, size >= headerSize else { return false }
        return size <= 2 * (metadata + (sidecar ?? 0)) + (1 << 20)
    }

    private static func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { ckpt_xxh3_64($0.baseAddress, $0.count) }
    }
}
