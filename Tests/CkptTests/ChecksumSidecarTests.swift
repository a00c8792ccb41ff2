import CkptTestSupport
import Foundation
import Testing
@testable import Ckpt

/// The `.ckpt-checksums.json` sidecar: the hand-written emitter writes exactly what Foundation's
/// `JSONEncoder` (sorted keys) wrote before, the parser reads any JSON spelling of it, and damaged
/// files are refused with an error naming the file and offset, never a crash.
@Suite struct ChecksumSidecarTests {
    /// The sidecar's shape as earlier versions encoded it with `Codable`.
    struct Mirror: Codable, Equatable {
        struct Entry: Codable, Equatable {
            var fqn: String
            var offsets: [Int]?
            var file: String
            var recordOffset: Int
            var recordLength: Int
            var payloadOffset: Int
            var payloadLength: Int
            var xxh3: String
        }
        var format = "ckpt-checksums"
        var version = 1
        var algorithm = "xxh3-64"
        var saveID: String
        var entries: [Entry]

        init(_ s: ChecksumSidecar) {
            saveID = s.saveID
            entries = s.entries.map {
                Entry(
                    fqn: $0.fqn, offsets: $0.offsets, file: $0.file, recordOffset: $0.recordOffset,
                    recordLength: $0.recordLength, payloadOffset: $0.payloadOffset, payloadLength: $0.payloadLength,
                    xxh3: String($0.xxh3Value, radix: 16))
            }
        }
    }

    static func random(_ rng: inout SplitMix64, entries: ClosedRange<Int> = 0...6) -> ChecksumSidecar {
        var s = ChecksumSidecar(saveID: WireMessageTests.string(&rng))
        for _ in 0..<rng.int(entries) {
            s.entries.append(ChecksumSidecar.Entry(
                fqn: WireMessageTests.string(&rng), offsets: WireMessageTests.maybe(&rng, WireMessageTests.ints),
                file: WireMessageTests.string(&rng), recordOffset: WireMessageTests.int(&rng),
                recordLength: WireMessageTests.int(&rng), payloadOffset: WireMessageTests.int(&rng),
                payloadLength: WireMessageTests.int(&rng),
                xxh3Value: rng.chance(0.1) ? UInt64(rng.int(0...15)) : rng.next()))
        }
        return s
    }

    static func foundationBytes(_ s: ChecksumSidecar, pretty: Bool = false) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        return Array(try encoder.encode(Mirror(s)))
    }

    static func corruptError(_ bytes: [UInt8]) -> CheckpointError? {
        do {
            _ = try ChecksumSidecar.decode(bytes, path: "/ckpt/.ckpt-checksums.json")
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: 0..<30)
    func emitterMatchesJSONEncoderAndParsesBack(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &+ 500)
        let sidecar = Self.random(&rng)
        let ours = try sidecar.encoded()
        #expect(ours == (try Self.foundationBytes(sidecar)), "seed \(seed)")
        #expect(try ChecksumSidecar.decode(ours, path: "s") == sidecar, "seed \(seed)")
        // Foundation reads ours; we read Foundation's pretty-printed spelling.
        #expect(try JSONDecoder().decode(Mirror.self, from: Data(ours)) == Mirror(sidecar), "seed \(seed)")
        #expect(try ChecksumSidecar.decode(try Self.foundationBytes(sidecar, pretty: true), path: "s") == sidecar, "seed \(seed)")
    }

    @Test func otherJSONSpellingsAreRead() throws {
        let text = """
             { "version" : 1, "saveID":"s\\u00e9\\ud83d\\ude00\\/x", "unknown": [ {"a": [null, true, false, -1.5e3]} ],
              "entries": [ { "xxh3": "ABCdef0123456789", "recordOffset": 0, "recordLength": 10, "payloadOffset": 2,
                "payloadLength": 8, "offsets": null, "fqn": "a\\tb", "file": "__0_0.distcp", "extra": {} } ],
              "algorithm": "xxh3-64", "format": "ckpt-checksums" }\t\n
            """
        let s = try ChecksumSidecar.decode(Array(text.utf8), path: "s")
        #expect(s.saveID == "sé😀/x")
        #expect(s.entries.count == 1)
        #expect(s.entries.first?.fqn == "a\tb")
        #expect(s.entries.first?.offsets == nil)
        #expect(s.entries.first?.hash == 0xABCD_EF01_2345_6789)
        #expect(s.entries.first?.xxh3 == "abcdef0123456789")
    }

    @Test func truncationAtEveryOffsetIsRefused() throws {
        var rng = SplitMix64(seed: 9)
        let bytes = try Self.random(&rng, entries: 3...3).encoded()
        var accepted: [Int] = []
        for cut in 0..<bytes.count {
            guard let error = Self.corruptError(Array(bytes[..<cut])) else {
                accepted.append(cut)
                continue
            }
            #expect(error.code == .corrupt)
            #expect(error.message.contains("/ckpt/.ckpt-checksums.json"))
        }
        #expect(accepted.isEmpty, "accepted truncations at \(accepted.prefix(5))")
    }

    @Test func damagedSidecarsNeverCrash() throws {
        var rng = SplitMix64(seed: 10)
        let bytes = try Self.random(&rng, entries: 4...4).encoded()
        var refused = 0
        for _ in 0..<2000 {
            var damaged = bytes
            for _ in 0..<rng.int(1...2) {
                damaged[rng.int(0...(damaged.count - 1))] ^= UInt8(truncatingIfNeeded: rng.int(1...255))
            }
            if let error = Self.corruptError(damaged) {
                #expect(error.code == .corrupt)
                refused += 1
            }
        }
        #expect(refused > 1000)
    }

    @Test func malformedShapesAreNamed() throws {
        func message(_ text: String) -> String { Self.corruptError(Array(text.utf8))?.message ?? "ACCEPTED" }
        let entry = #"{"file":"f","fqn":"x","payloadLength":1,"payloadOffset":0,"recordLength":1,"recordOffset":0,"xxh3":"ff"}"#
        func doc(_ entries: String, version: String = "1", format: String = "ckpt-checksums") -> String {
            #"{"algorithm":"xxh3-64","entries":[\#(entries)],"format":"\#(format)","saveID":"s","version":\#(version)}"#
        }
        #expect(message(doc(entry)) == "ACCEPTED")
        #expect(message(doc(entry, version: "2")).contains("unsupported"))
        #expect(message(doc(entry, format: "other")).contains("unsupported"))
        #expect(message(doc(entry, version: "1.0")).contains("integer"))
        #expect(message(doc(entry.replacingOccurrences(of: "\"ff\"", with: "\"xyz\""))).contains("hex"))
        #expect(message(doc(entry.replacingOccurrences(of: "\"ff\"", with: "\"11112222333344445\""))).contains("hex"))
        #expect(message(doc(entry.replacingOccurrences(of: #""fqn":"x","#, with: ""))).contains("fqn"))
        #expect(message(doc(entry.replacingOccurrences(of: #""fqn":"x""#, with: #""fqn":"x","fqn":"y""#))).contains("duplicate"))
        #expect(message(doc(entry.replacingOccurrences(of: "\"recordOffset\":0", with: "\"recordOffset\":99999999999999999999"))).contains("64 bits"))
        #expect(message(doc(entry) + "x").contains("end of the file"))
        #expect(message(#"{"algorithm":"xxh3-64"}"#).contains("entries"))
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(message(#"{"deep":\#(deep)}"#).contains("nested"))
        #expect(message("\"\u{1}\"").contains("object"))
        #expect(message(doc(entry.replacingOccurrences(of: "\"x\"", with: "\"a\u{1}b\""))).contains("control"))
        #expect(message(doc(entry.replacingOccurrences(of: "\"x\"", with: #""\ud800""#))).contains("surrogate"))
        // Every message names the file.
        #expect(message("[").contains("/ckpt/.ckpt-checksums.json"))
    }
}
