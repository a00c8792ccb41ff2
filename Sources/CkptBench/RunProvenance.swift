import Foundation

/// Where a benchmark result came from: the exact command, when, and which build.
public struct RunProvenance: Sendable, Hashable, Codable {
    /// The program arguments, `arguments[0]` being the program.
    public var arguments: [String]
    /// Start of the run, ISO 8601 UTC (e.g. `2026-11-25T14:48:51Z`).
    public var date: String
    /// `debug` or `release` (from `#if DEBUG` in this module).
    public var buildConfiguration: String
    /// The git commit of the working tree, when one can be found.
    public var gitCommit: String?

    /// Creates a provenance record.
    public init(arguments: [String], date: String, buildConfiguration: String, gitCommit: String?) {
        self.arguments = arguments
        self.date = date
        self.buildConfiguration = buildConfiguration
        self.gitCommit = gitCommit
    }

    /// The current process: its arguments, the current time, this build, and the git commit of the
    /// repository containing `searchDirectory` (default: the current directory), best effort.
    public static func current(now: Date = Date(), searchDirectory: String? = nil) -> RunProvenance {
        RunProvenance(
            arguments: CommandLine.arguments,
            date: isoDate(now),
            buildConfiguration: buildConfiguration,
            gitCommit: GitProbe.headCommit(from: searchDirectory ?? FileManager.default.currentDirectoryPath))
    }

    /// `debug` or `release`.
    public static var buildConfiguration: String {
        #if DEBUG
        return "debug"
        #else
        return "release"
        #endif
    }

    /// The command line as a shell would accept it (arguments quoted when needed).
    public var commandLine: String {
        arguments.map(shellQuote).joined(separator: " ")
    }

    /// Formats `date` as ISO 8601 UTC with whole seconds.
    public static func isoDate(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}

/// Quotes `argument` for a POSIX shell when it holds anything but safe characters.
func shellQuote(_ argument: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
    if !argument.isEmpty, argument.allSatisfy({ safe.contains($0) }) {
        return argument
    }
    return "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
