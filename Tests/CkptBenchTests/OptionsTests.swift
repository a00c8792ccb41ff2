import Foundation
import Testing

@testable import CkptBench

@Suite struct OptionsTests {
    @Test func sizesParseWithBinaryUnits() throws {
        #expect(try BenchOptions.parseSize("1G") == 1 << 30)
        #expect(try BenchOptions.parseSize("256M") == 256 << 20)
        #expect(try BenchOptions.parseSize("4GiB") == 4 << 30)
        #expect(try BenchOptions.parseSize("4gib") == 4 << 30)
        #expect(try BenchOptions.parseSize("512k") == 512 << 10)
        #expect(try BenchOptions.parseSize("2TB") == 2 << 40)
        #expect(try BenchOptions.parseSize("1.5G") == 3 << 29)
        #expect(try BenchOptions.parseSize(" 1048576 ") == 1 << 20)
        #expect(try BenchOptions.parseSize("100 MiB") == 100 << 20)
        #expect(try BenchOptions.parseSize("17B") == 17)
    }

    @Test(arguments: ["", "G", "-1G", "0", "0M", "1X", "1.2.3G", "1.", ".", ".5G", "0.3B", "99999999999999999999", "2000T", "1 G B", "abc"])
    func badSizesAreRejected(text: String) {
        #expect(throws: BenchOptionsError.self) { try BenchOptions.parseSize(text) }
    }

    @Test func sizeErrorsExplain() {
        do {
            _ = try BenchOptions.parseSize("3Q")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("unknown unit 'q'"))
            #expect(error.description.contains("'3Q'"))
        }
    }

    @Test func rankListsParse() throws {
        #expect(try BenchOptions.parseRankList("4") == [4])
        #expect(try BenchOptions.parseRankList("1,2,4,8") == [1, 2, 4, 8])
        #expect(try BenchOptions.parseRankList(" 1 - 3 , 8") == [1, 2, 3, 8])
        for bad in ["", "0", "1,,2", "a", "2,2", "4-2", "1-2-3", "-1", "2000", "1.5", "1-2,2"] {
            #expect(throws: BenchOptionsError.self, "\(bad)") { try BenchOptions.parseRankList(bad) }
        }
        do {
            _ = try BenchOptions.parseRankList("1,2,2")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("2 appears twice"))
        }
    }

    @Test func defaultLoadRanks() {
        #expect(BenchOptions.defaultLoadRanks(saveRanks: 4) == [4, 1, 2, 3, 8])
        #expect(BenchOptions.defaultLoadRanks(saveRanks: 1) == [1, 2, 3])
        #expect(BenchOptions.defaultLoadRanks(saveRanks: 2) == [2, 1, 3, 4])
        let options = BenchOptions(loadRanks: [5])
        #expect(options.effectiveLoadRanks(saveRanks: 4) == [5])
        #expect(BenchOptions().sizeBytes == BenchWorkload.defaultSizeBytes)
    }

    @Test func validationChecksResources() throws {
        let options = BenchOptions()
        let state = 1 << 30
        try options.validate(stateBytes: state, freeDiskBytes: 100 << 30, memoryAvailableBytes: 16 << 30)
        try options.validate(stateBytes: state, freeDiskBytes: nil, memoryAvailableBytes: nil)
        do {
            try options.validate(stateBytes: state, freeDiskBytes: 2 << 30, memoryAvailableBytes: nil)
            Issue.record("expected a disk error")
        } catch {
            guard case .insufficientDisk(_, let needed, let free, _) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(needed >= 4 * state)
            #expect(free == 2 << 30)
            #expect(error.description.contains("single-file baseline"))
        }
        #expect(throws: BenchOptionsError.self) {
            try options.validate(stateBytes: state, freeDiskBytes: nil, memoryAvailableBytes: 1 << 30)
        }
        var bad = options
        bad.repeats = 0
        #expect(throws: BenchOptionsError.self) { try bad.validate(stateBytes: state, freeDiskBytes: nil, memoryAvailableBytes: nil) }
        bad = options
        bad.ranks = []
        #expect(throws: BenchOptionsError.self) { try bad.validate(stateBytes: state, freeDiskBytes: nil, memoryAvailableBytes: nil) }
        bad = options
        bad.loadRanks = []
        #expect(throws: BenchOptionsError.self) { try bad.validate(stateBytes: state, freeDiskBytes: nil, memoryAvailableBytes: nil) }
        bad = options
        bad.loadRanks = [0]
        #expect(throws: BenchOptionsError.self) { try bad.validate(stateBytes: state, freeDiskBytes: nil, memoryAvailableBytes: nil) }
    }

    @Test func environmentValidationChecksTheDirectory() throws {
        var options = BenchOptions(sizeBytes: 1 << 20)
        options.directory = "/nonexistent-ckpt-bench-dir"
        #expect(throws: BenchOptionsError.directoryMissing(path: "/nonexistent-ckpt-bench-dir")) {
            try options.validateEnvironment(stateBytes: 1 << 20)
        }
        options.directory = "/proc/self/statm"
        #expect(throws: BenchOptionsError.notADirectory(path: "/proc/self/statm")) {
            try options.validateEnvironment(stateBytes: 1 << 20)
        }
        options.directory = NSTemporaryDirectory()
        try options.validateEnvironment(stateBytes: 1 << 20)
        // Far more than any disk has.
        #expect(throws: BenchOptionsError.self) { try options.validateEnvironment(stateBytes: 1 << 56) }
    }
}
