import CkptFormat
import CkptPlan
import Foundation

/// Messages exchanged by the ranks of a save or load through the ``Communicator`` (JSON bytes, so
/// any transport carries them). Every message can carry a rank's error instead of its payload, so
/// that a failing rank still takes part in each collective and nobody waits forever.
enum Wire {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        do {
            return Array(try JSONEncoder().encode(value))
        } catch {
            throw CheckpointError(.protocolViolation, "cannot encode \(T.self)", underlying: error)
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch {
            throw CheckpointError(.protocolViolation, "cannot decode \(T.self) from a peer", underlying: error)
        }
    }
}

/// One rank's save items (DCP's local plan).
struct LocalPlanMessage: Codable {
    struct Item: Codable {
        var fqn: String
        /// nil for a BYTE_IO value.
        var dtype: String?
        var elementSize: Int?
        var globalShape: [Int]?
        var offsets: [Int]?
        var sizes: [Int]?
        var estimatedSize: Int?
    }
    var error: String?
    var items: [Item] = []
    /// fqn -> path (for planner_data): strings are keys, ints are list indices.
    var paths: [PathMessage] = []
}

struct PathMessage: Codable {
    var fqn: String
    var keys: [String?]
    var indices: [Int?]

    init(fqn: String, path: [PathElement]) {
        self.fqn = fqn
        keys = path.map { if case .key(let k) = $0 { return k } else { return nil } }
        indices = path.map { if case .index(let i) = $0 { return i } else { return nil } }
    }

    var path: [PathElement] {
        zip(keys, indices).map { key, index in key.map(PathElement.key) ?? .index(index ?? 0) }
    }
}

/// The coordinator's answer: per rank, its files and the items in each.
struct GlobalPlanMessage: Codable {
    struct File: Codable {
        var name: String
        var items: [Int]
    }
    var error: String?
    var directory: String = ""
    var saveID: String = ""
    var files: [[File]] = []
}

/// What a rank wrote.
struct WriteResultMessage: Codable {
    struct Record: Codable {
        var item: Int
        var file: String
        var offset: Int
        var length: Int
        var payloadOffset: Int
        var payloadLength: Int
        var xxh3: UInt64
    }
    var error: String?
    var records: [Record] = []
}

/// The commit outcome, or the first error of any rank.
struct OutcomeMessage: Codable {
    var error: String?
}
