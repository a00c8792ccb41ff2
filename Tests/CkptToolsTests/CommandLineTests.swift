import ArgumentParser
import Foundation
import Testing
@testable import ckpt

@Suite struct CommandLineTests {
    @Test func subcommandsParse() throws {
        let inspect = try CkptCommand.parseAsRoot(["inspect", "dir", "--json"])
        let i = try #require(inspect as? CkptCommand.Inspect)
        #expect(i.directory == "dir" && i.json && !i.options.noProgress)

        let consolidate = try #require(try CkptCommand.parseAsRoot(["consolidate", "d", "--format", "safetensors", "-o", "x.st", "--no-progress"]) as? CkptCommand.Consolidate)
        #expect(consolidate.format == "safetensors" && consolidate.output == "x.st" && consolidate.options.noProgress)

        let reshard = try #require(try CkptCommand.parseAsRoot(["reshard", "in", "--ranks", "3", "out"]) as? CkptCommand.Reshard)
        #expect(reshard.directory == "in" && reshard.output == "out" && reshard.ranks == 3 && reshard.like == nil)

        let like = try #require(try CkptCommand.parseAsRoot(["reshard", "in", "out", "--like", "t"]) as? CkptCommand.Reshard)
        #expect(like.like == "t" && like.ranks == nil)

        let convert = try #require(try CkptCommand.parseAsRoot(["convert", "m.pt", "out", "--ranks", "4", "--overwrite"]) as? CkptCommand.Convert)
        #expect(convert.input == "m.pt" && convert.ranks == 4 && convert.overwrite)

        let verify = try #require(try CkptCommand.parseAsRoot(["verify", "d", "--max-problems", "7"]) as? CkptCommand.Verify)
        #expect(verify.maxProblems == 7)
    }

    @Test func crossFieldChecksRejectBadInvocations() {
        for args in [
            ["reshard", "in", "out"],                                  // neither --ranks nor --like
            ["reshard", "in", "out", "--ranks", "2", "--like", "t"],   // both
            ["reshard", "in", "out", "--ranks", "0"],
            ["consolidate", "d", "--format", "zip"],
            ["convert", "m.pt", "out", "--ranks", "0"],
            ["verify", "d", "--max-problems", "0"],
            ["inspect", "d", "--piece-mib", "0"],
            ["inspect"],                                               // missing argument
            ["frobnicate", "d"],
        ] {
            #expect(throws: (any Error).self, "\(args)") { _ = try CkptCommand.parseAsRoot(args) }
        }
    }

    @Test func helpHasExamples() {
        let help = CkptCommand.helpMessage(for: CkptCommand.Consolidate.self)
        #expect(help.contains("Examples:") && help.contains("--format"))
        #expect(CkptCommand.helpMessage().contains("reshard"))
    }
}

/// The built `ckpt` executable: exit statuses and one-line errors.
@Suite struct ExecutableTests {
    static let binary: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/ckpt").path
    }()

    func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = args
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func exitStatusesAndMessages() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the ckpt product first")
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").path
        let ok = try run(["verify", fixtures + "/a_4rank_shard0", "--no-progress"])
        #expect(ok.status == 0 && ok.out.hasPrefix("OK "))

        let tmp = FileManager.default.temporaryDirectory.path + "/ckpt-cli-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try FileManager.default.copyItem(atPath: fixtures + "/b_2rank_shard1", toPath: tmp + "/b")
        try FileManager.default.removeItem(atPath: tmp + "/b/.metadata")
        let bad = try run(["verify", tmp + "/b"])
        #expect(bad.status == 1 && bad.out.contains("PROBLEM .metadata"))

        let missing = try run(["consolidate", tmp + "/absent"])
        #expect(missing.status == 1)
        #expect(missing.err.hasPrefix("ckpt: error: ") && missing.err.split(separator: "\n").count == 1, "\(missing.err)")
        #expect(!FileManager.default.fileExists(atPath: tmp + "/absent.consolidated"))

        let consolidated = try run(["consolidate", fixtures + "/a_4rank_shard0", "-o", tmp + "/a.pt"])
        #expect(consolidated.status == 0 && FileManager.default.fileExists(atPath: tmp + "/a.pt"))
        let again = try run(["consolidate", fixtures + "/a_4rank_shard0", "-o", tmp + "/a.pt"])
        #expect(again.status == 1 && again.err.contains("already exists"))

        let usage = try run(["reshard", "x", "y"])
        #expect(usage.status != 0 && usage.err.contains("--ranks"))

        let json = try run(["inspect", fixtures + "/e_2rank_safetensors", "--json"])
        #expect(json.status == 0 && json.out.contains("\"formatVariant\" : \"safetensors\""))
    }
}
