import Foundation
import Testing

@testable import CkptBench

/// Opt-in: `CKPT_BENCH_RENDER_DIR=/tmp/charts swift test --filter renderSampleResults` writes the
/// sample report's results (summary, JSON, charts) there, for looking at the charts by eye.
@Test func renderSampleResults() throws {
    guard let directory = ProcessInfo.processInfo.environment["CKPT_BENCH_RENDER_DIR"] else { return }
    let written = try ResultsWriter(outputDirectory: directory).write(Sample.report(), label: "sample")
    print(ResultsTable.render(Sample.report()))
    print("wrote \(written.directory)")
    print(MachineDescription.current(directory: directory).summary)
}
