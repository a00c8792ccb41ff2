import Testing

@testable import CkptBench

@Suite struct StatisticsTests {
    @Test func medianOfOddAndEvenCounts() {
        #expect(RepeatStatistics.median([3, 1, 2]) == 2)
        #expect(RepeatStatistics.median([4, 1, 3, 2]) == 2.5)
        #expect(RepeatStatistics.median([7]) == 7)
        #expect(RepeatStatistics.median([]) == nil)
        let stats = RepeatStatistics([5, 1, 9, 3])
        #expect(stats.median == 4)
        #expect(stats.min == 1)
        #expect(stats.max == 9)
        #expect(stats.mean == 4.5)
        #expect(stats.samples == [5, 1, 9, 3])
    }

    @Test func throughputAndRatios() throws {
        let result = ScenarioResult(name: "s", group: "g", direction: .save, bytesMoved: 3_000_000_000, seconds: [1, 2, 3])
        #expect(abs(result.throughputGBps - 1.5) < 1e-12)
        #expect(ScenarioResult(name: "z", group: "g", direction: .load, bytesMoved: 10, seconds: []).throughputGBps == 0)
        let report = Sample.report()
        let raw = try #require(report.rawDevice)
        let save = report.scenarios[0]
        let expected = save.throughputGBps / (raw.writeGBps ?? 1)
        #expect(abs((save.rawDeviceRatio ?? 0) - expected) < 1e-12)
        let load = report.scenarios[3]
        #expect(abs((load.rawDeviceRatio ?? 0) - load.throughputGBps / (raw.readGBps ?? 1)) < 1e-12)
        #expect(report.scenarios[4].readAmplification == 1.5)
        #expect(Sample.report(raw: false).scenarios.allSatisfy { $0.rawDeviceRatio == nil })
    }
}
