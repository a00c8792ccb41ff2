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
