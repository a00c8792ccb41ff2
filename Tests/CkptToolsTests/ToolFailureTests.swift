@_spi(Testing) import CkptIO
import CkptFormat
import CkptTestSupport
import Foundation
import SystemPackage
import Testing
@testable import Ckpt

/// Every failure is a clear error and leaves nothing under the output name (nor temporaries).
@Suite struct ToolFailureTests {
    enum Operation: String, CaseIterable, CustomTestStringConvertible {
        case consolidate, consolidateSafetensors, reshard, convert
        var testDescription: String { rawValue }
    }

    /// Runs `operation` from `input` to `output`.
    func run(_ operation: Operation, input: String, output: String, engine: IOEngine, overwrite: Bool = false) async throws {
        switch operation {
        case .consolidate:
            _ = try await Consolidator(engine: engine, pieceBytes: 1 << 16).consolidate(input, to: output, format: .torchSave, overwrite: overwrite)
        case .consolidateSafetensors:
            _ = try await Consolidator(engine: engine, pieceBytes: 1 << 16).consolidate(input, to: output, format: .safetensors, overwrite: overwrite)
        case .reshard:
            _ = try await Resharder(engine: engine, pieceBytes: 1 << 16).reshard(input, to: output, layout: .rowSplit(ranks: 3), overwrite: overwrite)
        case .convert:
            _ = try await CheckpointConverter(engine: engine, pieceBytes: 1 << 16).convert(input, to: output, ranks: 2, overwrite: overwrite)
        }
    }

    /// A valid input for `operation` in `tmp` (a checkpoint dir, or a .pt file for convert).
    func input(for operation: Operation, in tmp: TempDir, engine: IOEngine, big: Bool = false) async throws -> String {
        let dir = tmp.path + "/ck"
        _ = try await ToolTest.engineCheckpoint(dir, world: 2, seed: 77, engine: engine, big: big)
        guard operation == .convert else { return dir }
        let pt = tmp.path + "/ck.pt"
        _ = try await Consolidator(engine: engine).consolidate(dir, to: pt, format: .torchSave)
        return pt
    }

    func message(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch {
            return ToolError.oneLine(error)
        }
    }

    @Test(arguments: Operation.allCases)
    func missingInput(_ operation: Operation) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let text = await message { try await run(operation, input: tmp.path + "/absent", output: tmp.path + "/out", engine: engine) }
        let m = try #require(text)
        #expect(m.contains("absent") && !m.contains("\n"), "\(m)")
        #expect(ToolTest.listing(tmp.path).isEmpty)
    }

    @Test(arguments: [Operation.consolidate, .consolidateSafetensors, .reshard])
    func incompleteCheckpoint(_ operation: Operation) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = try await input(for: operation, in: tmp, engine: engine)
        try FileManager.default.removeItem(atPath: dir + "/.metadata")
        let m = try #require(await message { try await run(operation, input: dir, output: tmp.path + "/out", engine: engine) })
        #expect(m.contains(".metadata") && m.contains("no committed checkpoint"), "\(m)")
        #expect(ToolTest.listing(tmp.path) == ["ck"])
        await #expect(throws: CheckpointError.self) { _ = try await CheckpointInspection.inspect(dir, engine: engine) }
    }

    @Test(arguments: Operation.allCases)
    func corruptedInput(_ operation: Operation) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let input = try await input(for: operation, in: tmp, engine: engine)
        let before = ToolTest.listing(tmp.path)
        if operation == .convert {
            try ToolTest.truncate(input, by: 64)  // the zip's end is gone
        } else {
            for name in ToolTest.listing(input) where name.hasSuffix(".distcp") { try ToolTest.truncate(input + "/" + name, by: 700) }
        }
        let m = try #require(await message { try await run(operation, input: input, output: tmp.path + "/out", engine: engine) })
        #expect(!m.isEmpty && !m.contains("\n"))
        #expect(ToolTest.listing(tmp.path) == before, "left behind: \(ToolTest.listing(tmp.path))")
    }

    @Test(arguments: Operation.allCases)
    func diskFull(_ operation: Operation) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let good = try makeEngine()
        defer { Task { await good.shutdown() } }
        let input = try await input(for: operation, in: tmp, engine: good, big: true)
        let before = ToolTest.listing(tmp.path)
        for k in [0, 3, 40] {
            let full = try IOEngine(
                configuration: IOEngineConfiguration(backend: .posix, queueDepth: 16, bufferSize: 64 << 10, bufferCount: 8),
                faultPlan: IOFaultPlan([.init(index: k, kind: .write, fault: .error(.noSpace))]))
            let m = await message { try await run(operation, input: input, output: tmp.path + "/out", engine: full) }
            await full.shutdown()
            let text = try #require(m, "write \(k) failing did not fail the \(operation)")
            #expect(text.lowercased().contains("space"), "\(text)")
            #expect(ToolTest.listing(tmp.path) == before, "write \(k): left behind \(ToolTest.listing(tmp.path))")
        }
    }

    /// A failing read anywhere in a consolidation (record heads, windows of the streaming path,
    /// batches) is a one-line error naming what was read, and nothing is left behind; a read
    /// that may fail (the optional `.ckpt-index`: loads fall back to `.metadata`) leaves the
    /// same file as without the fault.
    @Test(arguments: [Operation.consolidate, .consolidateSafetensors])
    func readErrorsFailCleanly(_ operation: Operation) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let good = try makeEngine()
        defer { Task { await good.shutdown() } }
        let input = try await input(for: operation, in: tmp, engine: good, big: true)
        let output = tmp.path + "/out"
        try await run(operation, input: input, output: output, engine: good)
        let expected = try ToolTest.bytes(output)
        try FileManager.default.removeItem(atPath: output)
        let before = ToolTest.listing(tmp.path)
        var failed = 0
        for k in [0, 1, 2, 3, 5, 8, 13, 30] {
            let failing = try IOEngine(
                configuration: IOEngineConfiguration(backend: .posix, queueDepth: 16, bufferSize: 64 << 10, bufferCount: 8),
                faultPlan: IOFaultPlan([.init(index: k, kind: .read, fault: .error(.ioError))]))
            let m = await message { try await run(operation, input: input, output: output, engine: failing) }
            let fired = failing.firedFaults.count
            await failing.shutdown()
            #expect(fired == 1, "read \(k) was not reached")
            if let text = m {
                failed += 1
                #expect(text.contains(input) && !text.contains("\n"), "\(text)")
                #expect(ToolTest.listing(tmp.path) == before, "read \(k): left behind \(ToolTest.listing(tmp.path))")
            } else {
                #expect(try ToolTest.bytes(output) == expected, "read \(k) failed, yet the output differs")
                try FileManager.default.removeItem(atPath: output)
            }
        }
        #expect(failed >= 6, "only \(failed) of 8 read faults failed the \(operation)")
    }

    @Test(arguments: Operation.allCases)
    func existingOutputIsRefusedUnlessOverwrite(_ operation: Operation) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let input = try await input(for: operation, in: tmp, engine: engine)
        let output = tmp.path + "/out"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: output))
        let m = try #require(await message { try await run(operation, input: input, output: output, engine: engine) })
        #expect(m.contains("already exists"), "\(m)")
        #expect(try ToolTest.bytes(output) == Array("keep me".utf8))
        try await run(operation, input: input, output: output, engine: engine, overwrite: true)
        if operation == .reshard || operation == .convert {
            #expect(ToolTest.exists(output + "/.metadata"))
        } else {
            #expect(try ToolTest.bytes(output) != Array("keep me".utf8))
        }
        #expect(!ToolTest.listing(tmp.path).contains { $0.contains("ckpt-tmp") || $0.contains("ckpt-old") })
    }
}
