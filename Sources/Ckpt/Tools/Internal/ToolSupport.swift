import Foundation

/// Path helpers of the tools.
enum ToolPaths {
    /// `path` without trailing slashes (`/` stays `/`).
    static func normalized(_ path: String) -> String {
        var p = path
        while p.count > 1, p.hasSuffix("/") { p.removeLast() }
        return p
    }

    /// The directory holding `path` (`.` for a bare name).
    static func parent(of path: String) -> String {
        let p = normalized(path)
        guard let slash = p.lastIndex(of: "/") else { return "." }
        let head = String(p[..<slash])
        return head.isEmpty ? "/" : head
    }

    /// `path` made absolute against the current directory.
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return normalized(path) }
        return normalized(FileManager.default.currentDirectoryPath + "/" + path)
    }

    /// Rank of a data file named `__{rank}_{i}.distcp` (DCP's file naming), nil otherwise.
    static func rank(ofDataFile name: String) -> Int? {
        let base = name.split(separator: "/").last.map(String.init) ?? name
        guard base.hasPrefix("__"), base.hasSuffix(".distcp") else { return nil }
        let middle = base.dropFirst(2).dropLast(7)
        guard let underscore = middle.firstIndex(of: "_") else { return nil }
        return Int(middle[..<underscore])
    }

    /// Checks that `directory` exists and is a directory.
    static func requireDirectory(_ directory: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw CheckpointError(.invalidArgument, "'\(directory)' does not exist")
        }
        guard isDirectory.boolValue else {
            throw CheckpointError(.invalidArgument, "'\(directory)' is not a directory")
        }
    }
}
