import Foundation

/// The PyTorch-written fixtures in `Tests/Fixtures` and their manifest.
public enum Fixtures {
    /// Absolute path of `Tests/Fixtures` in this checkout.
    public static let directory: String = {
        // Sources/CkptTestSupport/Fixtures.swift -> repository root.
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/Fixtures").path
    }()

    public struct Tensor: Decodable, Sendable {
        public var fqn: String
        public var dtype: String
        public var shape: [Int]
        public var sha256: String
    }

    public struct Fixture: Decodable, Sendable {
        public var name: String
        public var kind: String
        public var world_size: Int?
        public var serialization_format: String?
        public var tensors: [Tensor]
    }

    struct Manifest: Decodable {
        var fixtures: [Fixture]
    }

    /// Every fixture of the manifest.
    public static func manifest() throws -> [Fixture] {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/manifest.json"))
        return try JSONDecoder().decode(Manifest.self, from: data).fixtures
    }

    public static func path(_ name: String) -> String { directory + "/" + name }
}
