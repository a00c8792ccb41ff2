import Foundation

@testable import CkptPlan

/// The parts of `Tests/Fixtures/manifest.json` the planner tests use.
struct FixtureManifest {
    struct Chunk {
        var offsets: [Int]
        var sizes: [Int]
        var file: String
        var offset: Int
    }

    struct Tensor {
        var fqn: String
        var path: [PathElement]
        var dtype: String
        var shape: [Int]
        var placements: [String]?
        var chunks: [Chunk]
    }

    struct Object {
        var fqn: String
        var path: [PathElement]
        var file: String?
        var offset: Int?
    }

    struct Fixture {
        var name: String
        var worldSize: Int
        var threadCount: Int
        var tensors: [Tensor]
        var objects: [Object]
    }

    var fixtures: [String: Fixture]

    static let elementSizes: [String: Int] = [
        "float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2,
        "int8": 1, "uint8": 1, "bool": 1, "float8_e4m3fn": 1, "float8_e5m2": 1,
    ]

    static func load() throws -> FixtureManifest {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/manifest.json")
        let data = try Data(contentsOf: url)
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let list = root["fixtures"] as? [[String: Any]]
        else { throw ManifestError.malformed("root") }
        var fixtures: [String: Fixture] = [:]
        for entry in list {
            guard let name = entry["name"] as? String else { throw ManifestError.malformed("name") }
            let tensors = try (entry["tensors"] as? [[String: Any]] ?? []).map { t -> Tensor in
                guard let fqn = t["fqn"] as? String, let dtype = t["dtype"] as? String,
                    let shape = t["shape"] as? [Int]
                else { throw ManifestError.malformed("tensor in \(name)") }
                let chunks = try (t["chunks"] as? [[String: Any]] ?? []).map { c -> Chunk in
                    guard let offsets = c["offsets"] as? [Int], let sizes = c["sizes"] as? [Int],
                        let file = c["file"] as? String, let offset = c["offset"] as? Int
                    else { throw ManifestError.malformed("chunk of \(fqn)") }
                    return Chunk(offsets: offsets, sizes: sizes, file: file, offset: offset)
                }
                return Tensor(
                    fqn: fqn, path: try path(t["path"]), dtype: dtype, shape: shape,
                    placements: t["placements"] as? [String], chunks: chunks)
            }
            let objects = try (entry["objects"] as? [[String: Any]] ?? []).map { o -> Object in
                guard let fqn = o["fqn"] as? String else { throw ManifestError.malformed("object in \(name)") }
                return Object(fqn: fqn, path: try path(o["path"]), file: o["file"] as? String, offset: o["offset"] as? Int)
            }
            fixtures[name] = Fixture(
                name: name, worldSize: entry["world_size"] as? Int ?? 1,
                threadCount: entry["thread_count"] as? Int ?? 1, tensors: tensors, objects: objects)
        }
        return FixtureManifest(fixtures: fixtures)
    }

    private static func path(_ value: Any?) throws -> [PathElement] {
        guard let elements = value as? [Any] else { throw ManifestError.malformed("path") }
        return try elements.map { element in
            // JSONSerialization gives NSNumber for ints and String for strings.
            if let key = element as? String { return .key(key) }
            if let index = element as? Int { return .index(index) }
            throw ManifestError.malformed("path element \(element)")
        }
    }

    enum ManifestError: Error { case malformed(String) }
}
