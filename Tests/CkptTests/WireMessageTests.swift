import CkptFormat
import CkptPlan
import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

/// The binary messages ranks exchange: every message round-trips on random contents, and a
/// truncated, flipped or foreign message is refused with a protocol-violation error, never a crash.
@Suite struct WireMessageTests {
    // MARK: - Random contents

    static let pieces = [
        "", "a", "model", "layers", "0", "weight", "w/with/slash", "quote\"d", "back\\slash", "tab\t", "nl\n",
        "\u{0}nul", "\u{1f}", "é", "日本語", "😀", "\u{2028}", "torch.bfloat16", "__0_0.distcp",
        String(repeating: "long", count: 20),
    ]

    static func string(_ rng: inout SplitMix64) -> String {
        (0..<rng.int(0...3)).map { _ in rng.pick(pieces) }.joined()
    }

    static func int(_ rng: inout SplitMix64) -> Int {
        switch rng.int(0...5) {
        case 0: return rng.pick([0, 1, -1, Int.max, Int.min, 127, 128, -64, -65])
        case 1: return Int(truncatingIfNeeded: rng.next())
        default: return rng.int(-1000...100_000)
        }
    }

    static func ints(_ rng: inout SplitMix64) -> [Int] { (0..<rng.int(0...4)).map { _ in int(&rng) } }

    static func maybe<T>(_ rng: inout SplitMix64, _ make: (inout SplitMix64) -> T) -> T? {
        rng.chance(0.7) ? make(&rng) : nil
    }

    static func path(_ rng: inout SplitMix64) -> [PathElement] {
        (0..<rng.int(0...4)).map { _ in rng.chance(0.5) ? .key(string(&rng)) : .index(int(&rng)) }
    }

    static func localPlan(_ rng: inout SplitMix64) -> LocalPlanMessage {
        var m = LocalPlanMessage()
        let fqns = (0..<rng.int(1...4)).map { _ in string(&rng) }
        for _ in 0..<rng.int(0...8) {
            var item = LocalPlanMessage.Item(fqn: rng.pick(fqns))
            item.dtype = maybe(&rng) { rng in rng.pick(["torch.float32", "torch.bfloat16", string(&rng)]) }
            item.elementSize = maybe(&rng, int)
            item.globalShape = maybe(&rng, ints)
            item.offsets = maybe(&rng, ints)
            item.sizes = maybe(&rng, ints)
            item.estimatedSize = maybe(&rng, int)
            m.items.append(item)
        }
        for _ in 0..<rng.int(0...4) { m.paths.append(PathMessage(fqn: rng.pick(fqns), path: path(&rng))) }
        return m
    }

    static func globalPlan(_ rng: inout SplitMix64) -> GlobalPlanMessage {
        GlobalPlanMessage(
            directory: string(&rng), saveID: UUID().uuidString,
            files: (0..<rng.int(0...3)).map { _ in
                (0..<rng.int(0...2)).map { _ in GlobalPlanMessage.File(name: string(&rng), items: ints(&rng)) }
            })
    }

    static func writeResult(_ rng: inout SplitMix64) -> WriteResultMessage {
        let files = (0..<rng.int(1...3)).map { _ in string(&rng) }
        return WriteResultMessage(records: (0..<rng.int(0...6)).map { _ in
            WriteResultMessage.Record(
                item: int(&rng), file: rng.pick(files), offset: int(&rng), length: int(&rng),
                payloadOffset: int(&rng), payloadLength: int(&rng), xxh3: rng.next())
        })
    }

    static func metadata(_ rng: inout SplitMix64) -> DCPMetadata {
        var m = DCPMetadata(version: maybe(&rng, string))
        for i in 0..<rng.int(0...4) {
            let fqn = "t\(i)." + string(&rng)
            if rng.chance(0.3) {
                m.stateDictMetadata[fqn] = .bytes
                continue
            }
            let properties = TensorProperties(
                dtype: rng.pick(DType.allCases), layout: rng.pick(["torch.strided", string(&rng)]),
                requiresGrad: rng.chance(0.5), memoryFormat: int(&rng), pinMemory: rng.chance(0.5),
                strides: maybe(&rng, ints))
            let chunks = (0..<rng.int(0...3)).map { _ in ChunkStorageMetadata(offsets: ints(&rng), sizes: ints(&rng)) }
            m.stateDictMetadata[fqn] = .tensor(TensorStorageMetadata(properties: properties, size: ints(&rng), chunks: chunks))
        }
        if rng.chance(0.7) {
            var planner = OrderedMap<String, [PlannerPathElement]>()
            for i in 0..<rng.int(0...3) {
                planner["p\(i)" + string(&rng)] = path(&rng).map {
                    switch $0 {
                    case .key(let k): .key(k)
                    case .index(let n): .index(n)
                    }
                }
            }
            m.plannerData = planner
        }
        for i in 0..<rng.int(0...5) {
            let key = MetadataIndex(fqn: string(&rng), offset: [i] + ints(&rng), index: maybe(&rng, int))
            m.storageData[key] = StorageInfo(
                relativePath: string(&rng), offset: int(&rng), length: int(&rng),
                transformDescriptors: maybe(&rng) { rng in (0..<rng.int(0...2)).map { _ in string(&rng) } })
        }
        if rng.chance(0.7) {
            let id: StorageMeta.CheckpointID? = switch rng.int(0...2) {
            case 0: nil
            case 1: .path(className: "PosixPath", components: (0..<rng.int(0...3)).map { _ in string(&rng) })
            default: .string(string(&rng))
            }
            m.storageMeta = StorageMeta(
                checkpointID: id, saveID: maybe(&rng, string), loadID: maybe(&rng, string),
                modules: (0..<rng.int(0...2)).map { _ in string(&rng) })
        }
        return m
    }

    static func sidecar(_ rng: inout SplitMix64) -> ChecksumSidecar {
        var s = ChecksumSidecar(saveID: string(&rng))
        for _ in 0..<rng.int(0...4) {
            s.entries.append(ChecksumSidecar.Entry(
                fqn: string(&rng), offsets: maybe(&rng, ints), file: string(&rng), recordOffset: int(&rng),
                recordLength: int(&rng), payloadOffset: int(&rng), payloadLength: int(&rng), xxh3Value: rng.next()))
        }
        return s
    }

    static func committed(_ rng: inout SplitMix64) -> CommittedMessage {
        if rng.chance(0.2) {
            return CommittedMessage(.failure(ErrorMessage(code: "corrupt", message: string(&rng), cause: maybe(&rng, string))))
        }
        return CommittedMessage(.committed(metadata(&rng), maybe(&rng, sidecar)))
    }

    /// One random message of every type, encoded, with a check that it decodes to an equal value.
    static func samples(_ rng: inout SplitMix64) -> [(name: String, bytes: [UInt8], decodesEqual: ([UInt8]) throws -> Bool)] {
        func sample<M: WireMessage & Equatable>(_ message: M) -> (String, [UInt8], ([UInt8]) throws -> Bool) {
            let bytes = Wire.encode(message)
            return ("\(M.self)", bytes, { try Wire.decode(M.self, $0) == message })
        }
        let error = string(&rng)
        return [
            sample(localPlan(&rng)), sample(globalPlan(&rng)), sample(writeResult(&rng)), sample(OutcomeMessage()),
            sample(ErrorMessage(code: "io", message: string(&rng), cause: maybe(&rng, string))), sample(committed(&rng)),
            sample(LocalPlanMessage(error: error)), sample(GlobalPlanMessage(error: error)),
            sample(WriteResultMessage(error: error)), sample(OutcomeMessage(error: error)),
        ].map { (name: $0.0, bytes: $0.1, decodesEqual: $0.2) }
    }

    static func isProtocolViolation(_ body: () throws -> Void) -> Bool {
        do {
            try body()
            return false
        } catch let error as CheckpointError {
            return error.code == .protocolViolation
        } catch {
            return false
        }
    }

    // MARK: - Tests

    @Test(arguments: 0..<40)
    func everyMessageRoundTrips(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9 &+ 1)
        for sample in Self.samples(&rng) {
            #expect(try sample.decodesEqual(sample.bytes), "seed \(seed): \(sample.name) did not round-trip")
        }
    }

    @Test func errorsCrossTheWireWithTheirCodeAndCause() throws {
        let original = CheckpointError(.corrupt, "'/x/.metadata': bad pickle", underlying: CheckpointError(.io, "inner"))
        let decoded = Wire.decodeError(Wire.errorBytes(original))
        #expect(decoded.code == .corrupt)
        #expect(decoded.message == original.message)
        #expect(decoded.description == original.description)
        #expect(try Wire.decode(LocalPlanMessage.self, Wire.encode(LocalPlanMessage(error: "rank 3: boom"))).error == "rank 3: boom")
        #expect(Wire.decodeError([1, 2, 3]).code == .protocolViolation)
    }

    @Test func storageIndicesSurviveTheMetadataRoundTrip() throws {
        var rng = SplitMix64(seed: 77)
        for _ in 0..<20 {
            let m = Self.metadata(&rng)
            let bytes = Wire.encode(CommittedMessage(.committed(m, nil)))
            guard case .committed(let back, _) = try Wire.decode(CommittedMessage.self, bytes).content else {
                Issue.record("not committed")
                return
            }
            // MetadataIndex equality ignores `index`; check it separately.
            #expect(back == m)
            #expect(back.storageData.keys.map(\.index) == m.storageData.keys.map(\.index))
        }
    }

    @Test func truncationAtEveryOffsetIsAProtocolViolation() throws {
        for seed in UInt64(0)..<8 {
            var rng = SplitMix64(seed: seed)
            for sample in Self.samples(&rng) {
                var accepted: [Int] = []
                for cut in 0..<sample.bytes.count
                where !Self.isProtocolViolation({ _ = try sample.decodesEqual(Array(sample.bytes[..<cut])) }) {
                    accepted.append(cut)
                }
                #expect(accepted.isEmpty, "seed \(seed): \(sample.name) of \(sample.bytes.count) bytes accepted cuts \(accepted.prefix(5))")
                // Trailing bytes are refused too.
                #expect(Self.isProtocolViolation({ _ = try sample.decodesEqual(sample.bytes + [0]) }))
            }
        }
    }

    @Test func flippedBytesNeverCrash() throws {
        var refused = 0
        var accepted = 0
        for seed in UInt64(0)..<6 {
            var rng = SplitMix64(seed: seed &+ 1000)
            for sample in Self.samples(&rng) where !sample.bytes.isEmpty {
                for _ in 0..<60 {
                    var bytes = sample.bytes
                    for _ in 0..<rng.int(1...3) {
                        bytes[rng.int(0...(bytes.count - 1))] ^= UInt8(truncatingIfNeeded: rng.int(1...255))
                    }
                    do {
                        _ = try sample.decodesEqual(bytes)
                        accepted += 1
                    } catch let error as CheckpointError {
                        #expect(error.code == .protocolViolation, "seed \(seed): \(sample.name): \(error)")
                        refused += 1
                    }
                }
            }
        }
        #expect(refused > 0)
        print("flipped messages: \(refused) refused, \(accepted) decoded")
    }

    @Test func foreignAndHostileMessagesAreNamed() throws {
        let plan = Wire.encode(GlobalPlanMessage(directory: "d", saveID: "s", files: []))
        let wrongType = #expect(throws: CheckpointError.self) { try Wire.decode(WriteResultMessage.self, plan) }
        #expect(wrongType?.message.contains("write result") == true)
        #expect(wrongType?.message.contains("global plan") == true)

        var newer = plan
        newer[3] = 9
        let version = #expect(throws: CheckpointError.self) { try Wire.decode(GlobalPlanMessage.self, newer) }
        #expect(version?.message.contains("version") == true)

        let json = Array(#"{"error":null}"#.utf8)
        let notOurs = #expect(throws: CheckpointError.self) { try Wire.decode(OutcomeMessage.self, json) }
        #expect(notOurs?.code == .protocolViolation)

        // A count far beyond the message's size is refused before anything is allocated.
        var huge = Array(plan.prefix(5))
        huge += [0x01, 0x41]  // directory "A"
        huge += [0x00]  // save id ""
        huge += [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]  // rank count ~2^63
        let count = #expect(throws: CheckpointError.self) { try Wire.decode(GlobalPlanMessage.self, huge) }
        #expect(count?.message.contains("rank count") == true)

        // An 11-byte varint overflows.
        let overflow = Array(plan.prefix(5)) + [UInt8](repeating: 0xFF, count: 11)
        #expect(Self.isProtocolViolation { _ = try Wire.decode(GlobalPlanMessage.self, overflow) })

        // Invalid UTF-8 in a string.
        let badText = Array(plan.prefix(5)) + [0x02, 0xC3, 0x28, 0x00, 0x00]
        let utf8 = #expect(throws: CheckpointError.self) { try Wire.decode(GlobalPlanMessage.self, badText) }
        #expect(utf8?.message.contains("UTF-8") == true)
    }

    @Test func fixtureMetadataRoundTripsThroughTheLoadAnswer() throws {
        for name in FixtureLoadTests.dcpFixtures {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(name) + "/.metadata")))
            let metadata = try DCPMetadata(decoding: bytes)
            let wire = Wire.encode(CommittedMessage(.committed(metadata, nil)))
            guard case .committed(let back, nil) = try Wire.decode(CommittedMessage.self, wire).content else {
                Issue.record("\(name): not a committed answer")
                continue
            }
            #expect(back == metadata, "\(name)")
            #expect(back.storageData.keys.map(\.index) == metadata.storageData.keys.map(\.index), "\(name)")
            // Re-encoding gives PyTorch's bytes back, as from the pickle.
            #expect(back.encoded() == metadata.encoded(), "\(name)")
        }
    }

    @Test func aPlanNamingForeignItemsIsRefused() throws {
        // (The save then reports it through the rank's write result, so no rank waits forever.)
        let plan = GlobalPlanMessage(directory: "/tmp", saveID: "x", files: [[], [GlobalPlanMessage.File(name: "f", items: [5])]])
        let problem = #expect(throws: CheckpointError.self) { try Checkpointer.check(plan, rank: 1, itemCount: 2) }
        #expect(problem?.code == .protocolViolation)
        #expect(throws: CheckpointError.self) { try Checkpointer.check(plan, rank: 2, itemCount: 2) }
        try Checkpointer.check(plan, rank: 0, itemCount: 0)
    }
}
