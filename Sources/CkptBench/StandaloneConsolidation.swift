import Ckpt
import CkptIO

/// `ckpt-bench --consolidate DIR --output FILE`: one consolidation in its own process, so that a
/// script can time it (and its peak RSS) as a whole process against PyTorch's `dcp_to_torch_save`.
public enum StandaloneConsolidation {
    /// Consolidates `directory` into `output` (`format`: `torch` or `safetensors`) with a fresh
    /// engine; returns a one-line description of what was written.
    public static func run(directory: String, output: String, format: String, options: BenchOptions) async throws
        -> String
    {
        guard let chosen = ConsolidationFormat(rawValue: format) else {
            throw BenchOptionsError.invalidValue(option: "--format", value: format, reason: "must be torch or safetensors")
        }
        var configuration = RunContext.engineConfiguration(options)
        configuration.bufferCount = max(configuration.bufferCount, Consolidator.streamPoolBuffers())
        let engine = try IOEngine(configuration: configuration)
        do {
            let report = try await Consolidator(engine: engine, options: CheckpointOptions(direct: options.ioMode == .direct))
                .consolidate(directory, to: output, format: chosen, overwrite: true)
            await engine.shutdown()
            return "consolidated \(report.tensorCount) tensors and \(report.valueCount) values, "
                + "\(report.fileBytes) bytes, to \(report.output)" + (report.streamed ? " (streamed)" : " (tensor by tensor)")
        } catch {
            await engine.shutdown()
            throw error
        }
    }
}
