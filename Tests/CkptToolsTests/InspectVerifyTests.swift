import CkptFormat
import CkptIO
import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

@Suite struct InspectTests {
    static let fixtures = ["a_4rank_shard0", "b_2rank_shard1", "c_4rank_uneven_empty", "d_1rank_nested",
                           "e_2rank_safetensors", "g_lightning_fsdp_sharded"]

    @Test(arguments: fixtures)
    func inspectFixtureAgreesWithManifest(name: String) async throws {
        let fixture = try #require(try Fixtures.manifest().first { $0.name == name })
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let inspection = try await CheckpointInspection.inspect(Fixtures.path(name), engine: engine)
        #expect(inspection.worldSize == fixture.world_size)
        #expect(inspection.formatVariant == fixture.serialization_format)
        #expect(inspection.hasChecksums == false)
        #expect(inspection.hasLightningMeta == (name == "g_lightning_fsdp_sharded"))
        #expect(inspection.tensors.count == fixture.tensors.count)
        for t in fixture.tensors {
            let got = try #require(inspection.tensors.first { $0.fqn == t.fqn })
            #expect(got.dtype == t.dtype && got.shape == t.shape)
            #expect(got.bytes == t.shape.reduce(1, *) * (DType(torchName: t.dtype)?.itemSize ?? 0))
        }
        #expect(inspection.totalTensorBytes == inspection.tensors.reduce(0) { $0 + $1.bytes })
        #expect(!inspection.values.contains { $0.type == "undecodable" })
        // JSON round trip and table mention every tensor.
        let decoded = try JSONDecoder().decode(CheckpointInspection.self, from: Data(try inspection.json().utf8))
        #expect(decoded.tensors.map(\.fqn) == inspection.tensors.map(\.fqn))
        let table = inspection.table()
        for t in fixture.tensors { #expect(table.contains(t.fqn)) }
    }

    @Test func inspectShowsValuesAndChecksumsOfEngineCheckpoint() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = tmp.path + "/ck"
        _ = try await ToolTest.engineCheckpoint(dir, world: 3, seed: 11, engine: engine)
        let inspection = try await CheckpointInspection.inspect(dir, engine: engine)
        #expect(inspection.hasChecksums && inspection.checksumsMatchSave)
        #expect(inspection.formatVariant == "torch_save")
        let step = try #require(inspection.values.first { $0.fqn == "extra.step" })
        #expect(step.type == "int" && step.repr == "42")
        let name = try #require(inspection.values.first { $0.fqn == "extra.name" })
        #expect(name.repr == "'run-7'")
    }

    @Test func shortReprIsPythonLike() {
        #expect(ValueRepr.short(.list([.float(0.1), .float(0.01)])) == "[0.1, 0.01]")
        #expect(ValueRepr.short(.tuple([.float(0.9)])) == "(0.9,)")
        #expect(ValueRepr.short(.dict([.init(.string("a"), .bool(true))])) == "{'a': True}")
        #expect(ValueRepr.short(.float(3)) == "3.0")
        let long = ValueRepr.short(.list((0..<100).map { .int(Int64($0)) }), limit: 20)
        #expect(long.count <= 20 && long.hasSuffix("…"))
    }
}

@Suite struct VerifyTests {
    @Test(arguments: InspectTests.fixtures)
    func fixturesVerify(name: String) async throws {
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let report = try await CheckpointVerifier(engine: engine).verify(Fixtures.path(name))
        #expect(report.isValid, "\(report.problems)")
        #expect(report.tensorRecords > 0)
        #expect(!report.hasChecksums)
    }

    /// An engine checkpoint with checksums, plus the sidecar entries.
    func engineCheckpoint(_ tmp: TempDir, engine: IOEngine, big: Bool = false) async throws -> (String, ChecksumSidecar) {
        let dir = tmp.path + "/ck"
        _ = try await ToolTest.engineCheckpoint(dir, world: 2, seed: 5, engine: engine, big: big)
        let sidecar = try ChecksumSidecar.decode(try ToolTest.bytes(dir + "/" + Checkpointer.checksumFileName), path: "sidecar")
        return (dir, sidecar)
    }

    @Test func intactEngineCheckpointVerifiesWithChecksums() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let (dir, sidecar) = try await engineCheckpoint(tmp, engine: engine, big: true)
        // A small piece forces the streaming path for the big record.
        let report = try await CheckpointVerifier(engine: engine, pieceBytes: 1 << 16).verify(dir)
        #expect(report.isValid, "\(report.problems)")
        #expect(report.hasChecksums)
        #expect(report.checksumsVerified == sidecar.entries.count)
    }

    @Test(arguments: [false, true])
    func flippedPayloadBitIsCaught(big: Bool) async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let (dir, sidecar) = try await engineCheckpoint(tmp, engine: engine, big: big)
        let target = try #require(sidecar.entries.filter { $0.offsets != nil && $0.payloadLength > 0 }.max { $0.payloadLength < $1.payloadLength })
        try ToolTest.flipBit(dir + "/" + target.file, at: target.payloadOffset + target.payloadLength / 2)
        let report = try await CheckpointVerifier(engine: engine, pieceBytes: 1 << 16).verify(dir)
        #expect(!report.isValid)
        #expect(report.problems.contains { $0.file == target.file && $0.message.contains("XXH3") && $0.message.contains(target.fqn) })
    }

    @Test func flippedBitInPyTorchRecordIsCaughtByZipCRC() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = try ToolTest.copyFixture("a_4rank_shard0", to: tmp.path)
        let metadata = try DCPMetadata(decoding: try ToolTest.bytes(dir + "/.metadata"))
        let info = try #require(metadata.storage(fqn: "model.embed.weight", offsets: [0, 0]))
        // The payload sits in the second half of a small record; flip a byte inside it.
        let record = try ToolTest.bytes(dir + "/" + info.relativePath)
        let parsed = try TorchTensorRecord.read(Array(record[info.offset..<(info.offset + info.length)]))
        try ToolTest.flipBit(dir + "/" + info.relativePath, at: info.offset + parsed.tensorRange.lowerBound + 3)
        let report = try await CheckpointVerifier(engine: engine).verify(dir)
        #expect(report.problems.contains { $0.file == info.relativePath && $0.message.contains("CRC") })
    }

    @Test func truncatedFileIsCaught() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let (dir, _) = try await engineCheckpoint(tmp, engine: engine)
        try ToolTest.truncate(dir + "/__1_0.distcp", by: 100)
        let report = try await CheckpointVerifier(engine: engine).verify(dir)
        #expect(!report.isValid)
        #expect(report.problems.contains { $0.file == "__1_0.distcp" && $0.message.contains("truncated") && $0.offset != nil })
    }

    @Test func swappedShardFilesAreCaught() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let (dir, _) = try await engineCheckpoint(tmp, engine: engine)
        let fm = FileManager.default
        try fm.moveItem(atPath: dir + "/__0_0.distcp", toPath: dir + "/swap")
        try fm.moveItem(atPath: dir + "/__1_0.distcp", toPath: dir + "/__0_0.distcp")
        try fm.moveItem(atPath: dir + "/swap", toPath: dir + "/__1_0.distcp")
        let report = try await CheckpointVerifier(engine: engine).verify(dir)
        #expect(!report.isValid)
        #expect(report.problems.contains { $0.file == "__0_0.distcp" })
        #expect(report.problems.contains { $0.file == "__1_0.distcp" })
    }

    @Test func swappedEqualShardsOfPyTorchCheckpointAreCaughtByChecksumsOnly() async throws {
        // Two files with identical layouts: only content checks can tell them apart. Reshard a
        // PyTorch fixture (adds checksums) into 2 equal ranks, then swap.
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = tmp.path + "/r"
        _ = try await Resharder(engine: engine).reshard(Fixtures.path("b_2rank_shard1"), to: dir, layout: .like(template: Fixtures.path("b_2rank_shard1")))
        let fm = FileManager.default
        try fm.moveItem(atPath: dir + "/__0_0.distcp", toPath: dir + "/swap")
        try fm.moveItem(atPath: dir + "/__1_0.distcp", toPath: dir + "/__0_0.distcp")
        try fm.moveItem(atPath: dir + "/swap", toPath: dir + "/__1_0.distcp")
        let report = try await CheckpointVerifier(engine: engine).verify(dir)
        #expect(!report.isValid)
    }

    @Test func deletedFileIsCaughtAndCheckingGoesOn() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let (dir, sidecar) = try await engineCheckpoint(tmp, engine: engine)
        try FileManager.default.removeItem(atPath: dir + "/__1_0.distcp")
        // Also corrupt the other file: both problems are reported.
        let target = try #require(sidecar.entries.first { $0.file == "__0_0.distcp" && $0.offsets != nil && $0.payloadLength > 0 })
        try ToolTest.flipBit(dir + "/__0_0.distcp", at: target.payloadOffset)
        let report = try await CheckpointVerifier(engine: engine).verify(dir)
        #expect(report.problems.filter { $0.file == "__1_0.distcp" && $0.message.contains("missing") }.count == 1)
        #expect(report.problems.contains { $0.file == "__0_0.distcp" })
    }

    @Test func missingMetadataIsCaught() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let dir = try ToolTest.copyFixture("a_4rank_shard0", to: tmp.path)
        try FileManager.default.removeItem(atPath: dir + "/.metadata")
        let report = try await CheckpointVerifier(engine: engine).verify(dir)
        #expect(report.problems.map(\.file) == [".metadata"])
        await #expect(throws: CheckpointError.self) { try await CheckpointVerifier(engine: engine).verify(tmp.path + "/nope") }
    }

    @Test func staleSidecarAndBoundedProblemList() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let engine = try makeEngine()
        defer { Task { await engine.shutdown() } }
        let (dir, _) = try await engineCheckpoint(tmp, engine: engine)
        let other = tmp.path + "/other"
        _ = try await ToolTest.engineCheckpoint(other, world: 2, seed: 6, engine: engine)
        try FileManager.default.removeItem(atPath: dir + "/" + Checkpointer.checksumFileName)
        try FileManager.default.copyItem(atPath: other + "/" + Checkpointer.checksumFileName, toPath: dir + "/" + Checkpointer.checksumFileName)
        let report = try await CheckpointVerifier(engine: engine).verify(dir)
        #expect(report.problems.contains { $0.file == Checkpointer.checksumFileName && $0.message.contains("belongs to save") })
        // Every file truncated to nothing: many problems, bounded list.
        for name in ToolTest.listing(dir) where name.hasSuffix(".distcp") { try Data().write(to: URL(fileURLWithPath: dir + "/" + name)) }
        let bounded = try await CheckpointVerifier(engine: engine, maxProblems: 2).verify(dir)
        #expect(bounded.problems.count == 2 && bounded.omittedProblems > 0)
    }
}
