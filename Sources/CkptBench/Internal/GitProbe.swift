import Foundation

/// Reads the commit of `HEAD` from a `.git` directory or worktree file, without running git.
enum GitProbe {
    static func headCommit(from directory: String) -> String? {
        var current = URL(fileURLWithPath: directory).standardizedFileURL
        for _ in 0..<64 {
            let dotGit = current.appendingPathComponent(".git").path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: dotGit, isDirectory: &isDirectory) {
                let gitDir: String
                if isDirectory.boolValue {
                    gitDir = dotGit
                } else {
                    guard let text = SystemProbe.readTrimmed(dotGit), text.hasPrefix("gitdir:") else { return nil }
                    let target = text.dropFirst("gitdir:".count).trimmingCharacters(in: .whitespaces)
                    gitDir = target.hasPrefix("/") ? target : current.appendingPathComponent(target).path
                }
                return resolveHead(gitDir: gitDir)
            }
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { return nil }
            current = parent
        }
        return nil
    }

    static func resolveHead(gitDir: String) -> String? {
        guard let head = SystemProbe.readTrimmed(gitDir + "/HEAD") else { return nil }
        guard head.hasPrefix("ref:") else { return isCommit(head) ? head : nil }
        let ref = head.dropFirst(4).trimmingCharacters(in: .whitespaces)
        // A linked worktree keeps shared refs in its common directory.
        var directories = [gitDir]
        if let common = SystemProbe.readTrimmed(gitDir + "/commondir") {
            directories.append(common.hasPrefix("/") ? common : gitDir + "/" + common)
        }
        for directory in directories {
            if let value = SystemProbe.readTrimmed(directory + "/" + ref), isCommit(value) {
                return value
            }
            if let packed = SystemProbe.readText(directory + "/packed-refs") {
                for line in packed.split(separator: "\n") {
                    let fields = line.split(separator: " ")
                    if fields.count == 2, fields[1] == ref, isCommit(String(fields[0])) {
                        return String(fields[0])
                    }
                }
            }
        }
        return nil
    }

    private static func isCommit(_ text: String) -> Bool {
        (text.count == 40 || text.count == 64) && text.allSatisfy { $0.isHexDigit }
    }
}
