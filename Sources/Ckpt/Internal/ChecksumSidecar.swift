import Foundation

/// The `.ckpt-checksums.json` sidecar: an XXH3-64 of every tensor payload and every BYTE_IO
/// record, tied to the save by `save_id` (the same id as `.metadata`'s `storage_meta.save_id`, so a
/// stale sidecar is recognised). PyTorch never reads it.
struct ChecksumSidecar: Codable {
    struct Entry: Codable {
        var fqn: String
        /// Chunk offsets; nil for a BYTE_IO value.
        var offsets: [Int]?
        var file: String
        var recordOffset: Int
        var recordLength: Int
        var payloadOffset: Int
        var payloadLength: Int
        /// XXH3-64 of the payload bytes (tensor data, or the whole BYTE_IO record), hex.
        var xxh3: String

        init(record: WriteResultMessage.Record, fqn: String, offsets: [Int]?) {
            self.fqn = fqn
            self.offsets = offsets
            file = record.file
            recordOffset = record.offset
            recordLength = record.length
            payloadOffset = record.payloadOffset
            payloadLength = record.payloadLength
            xxh3 = String(record.xxh3, radix: 16)
        }

        var hash: UInt64? { UInt64(xxh3, radix: 16) }
    }

    var format = "ckpt-checksums"
    var version = 1
    var algorithm = "xxh3-64"
    var saveID: String
    var entries: [Entry] = []

    init(saveID: String) { self.saveID = saveID }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return Array(try encoder.encode(self))
        } catch {
            throw CheckpointError(.protocolViolation, "cannot encode the checksum sidecar", underlying: error)
        }
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> ChecksumSidecar {
        do {
            let sidecar = try JSONDecoder().decode(ChecksumSidecar.self, from: Data(bytes))
            guard sidecar.format == "ckpt-checksums", sidecar.version == 1, sidecar.algorithm == "xxh3-64" else {
                throw CheckpointError(.corrupt, "'\(path)': unsupported checksum sidecar \(sidecar.format) v\(sidecar.version) \(sidecar.algorithm)")
            }
            return sidecar
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError(.corrupt, "'\(path)': checksum sidecar is not valid JSON of the expected shape", underlying: error)
        }
    }
}
