/// The `.ckpt-checksums.json` sidecar: an XXH3-64 of every tensor payload and every BYTE_IO
/// record, tied to the save by `save_id` (the same id as `.metadata`'s `storage_meta.save_id`, so a
/// stale sidecar is recognised). PyTorch never reads it.
///
/// Format (version 1): one JSON object with sorted keys and no whitespace, as Foundation's
/// `JSONEncoder` with `.sortedKeys` writes it (earlier versions of ckpt used it; the hand-written
/// emitter and parser here produce and accept the same bytes):
/// `{"algorithm":"xxh3-64","entries":[{"file":…,"fqn":…,"offsets":[…],"payloadLength":…,
/// "payloadOffset":…,"recordLength":…,"recordOffset":…,"xxh3":"<hex>"},…],"format":"ckpt-checksums",
/// "saveID":…,"version":1}` (`offsets` absent for a BYTE_IO value). Readers accept any JSON
/// spelling of it (whitespace, key order, escapes) and ignore unknown keys.
struct ChecksumSidecar: Equatable, Sendable {
    struct Entry: Equatable, Sendable {
        var fqn: String
        /// Chunk offsets; nil for a BYTE_IO value.
        var offsets: [Int]?
        var file: String
        var recordOffset: Int
        var recordLength: Int
        var payloadOffset: Int
        var payloadLength: Int
        /// XXH3-64 of the payload bytes (tensor data, or the whole BYTE_IO record).
        var xxh3Value: UInt64

        init(record: WriteResultMessage.Record, fqn: String, offsets: [Int]?) {
            self.init(
                fqn: fqn, offsets: offsets, file: record.file, recordOffset: record.offset, recordLength: record.length,
                payloadOffset: record.payloadOffset, payloadLength: record.payloadLength, xxh3Value: record.xxh3)
        }

        init(
            fqn: String, offsets: [Int]?, file: String, recordOffset: Int, recordLength: Int, payloadOffset: Int,
            payloadLength: Int, xxh3Value: UInt64
        ) {
            self.fqn = fqn
            self.offsets = offsets
            self.file = file
            self.recordOffset = recordOffset
            self.recordLength = recordLength
            self.payloadOffset = payloadOffset
            self.payloadLength = payloadLength
            self.xxh3Value = xxh3Value
        }

        /// The hash as the file spells it (lowercase hex, no leading zeros).
        var xxh3: String { String(xxh3Value, radix: 16) }
        /// The hash (always present: the parser refuses an entry without a valid one).
        var hash: UInt64? { xxh3Value }
    }

    static let format = "ckpt-checksums"
    static let version = 1
    static let algorithm = "xxh3-64"

    var saveID: String
    var entries: [Entry] = []

    init(saveID: String) { self.saveID = saveID }

    /// The sidecar file's bytes. (Declared throwing for its callers' sake; it cannot fail.)
    func encoded() throws(CheckpointError) -> [UInt8] {
        var out = JSONBytesWriter(capacity: 64 + saveID.utf8.count + entries.count * 160)
        out.literal(#"{"algorithm":"xxh3-64","entries":["#)
        for (i, e) in entries.enumerated() {
            out.literal(i == 0 ? #"{"file":"# : #",{"file":"#)
            out.string(e.file)
            out.literal(#","fqn":"#)
            out.string(e.fqn)
            if let offsets = e.offsets {
                out.literal(#","offsets":["#)
                for (k, o) in offsets.enumerated() {
                    if k > 0 { out.byte(UInt8(ascii: ",")) }
                    out.int(o)
                }
                out.byte(UInt8(ascii: "]"))
            }
            out.literal(#","payloadLength":"#)
            out.int(e.payloadLength)
            out.literal(#","payloadOffset":"#)
            out.int(e.payloadOffset)
            out.literal(#","recordLength":"#)
            out.int(e.recordLength)
            out.literal(#","recordOffset":"#)
            out.int(e.recordOffset)
            out.literal(#","xxh3":""#)
            out.hex(e.xxh3Value)
            out.literal(#""}"#)
        }
        out.literal(#"],"format":"ckpt-checksums","saveID":"#)
        out.string(saveID)
        out.literal(#","version":1}"#)
        return out.finish()
    }

    /// Parses a sidecar file; errors name `path` and the byte offset.
    static func decode(_ bytes: [UInt8], path: String) throws(CheckpointError) -> ChecksumSidecar {
        let result: Result<ChecksumSidecar, SidecarParseError> = bytes.withUnsafeBytes { raw in
            do throws(SidecarParseError) {
                var parser = SidecarParser(raw)
                return .success(try parser.sidecar())
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let sidecar): return sidecar
        case .failure(let error):
            if error.unsupported {
                throw CheckpointError(.corrupt, "'\(path)': unsupported checksum sidecar: \(error.message)")
            }
            throw CheckpointError(
                .corrupt, "'\(path)': checksum sidecar is not valid JSON of the expected shape: at byte \(error.offset), expected \(error.message)")
        }
    }
}
