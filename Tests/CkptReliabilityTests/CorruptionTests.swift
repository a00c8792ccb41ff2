import Ckpt
import CkptFormat
import CkptIO
import CkptTestSupport
import Foundation
import Testing

/// Damaged checkpoints: bit flips (payloads, record headers, `.metadata`, the sidecar),
/// truncations, swapped and deleted files.
///
/// With `verifyChecksums: true` every damage is detected: the load is refused with `corrupt`
/// (or `incompleteCheckpoint` / `mismatch` when `.metadata` itself is hit) naming what broke, or
/// it returns exactly the saved state (the damage hit bytes no reader uses). Without checksums,
/// structural damage (headers, truncation, missing files) is still refused; what structure cannot
/// tell (payload bytes, a swap of same-shaped files, a `.metadata` offset moved onto another
/// record of the same shape) is counted and printed as undetectable-without-checksums, never
/// allowed for header damage.
@Suite struct CorruptionTests {
    static let rows = 64
    static let ranks = 3

    struct SidecarEntry: Decodable {
        var fqn: String
        var offsets: [Int]?
        var file: String
        var recordOffset: Int
        var recordLength: Int
        var payloadOffset: Int
        var payloadLength: Int
    }

    struct Sidecar: Decodable {
        var entries: [SidecarEntry]
    }

    /// A saved checkpoint whose files can be damaged and restored.
    final class Subject: @unchecked Sendable {
        // Safety: used by one test at a time.
        let dir: ScratchDir
        let path: String
        let engine: IOEngine
        var originals: [String: [UInt8]] = [:]
        let sidecar: Sidecar

        init() async throws {
            dir = ScratchDir("ckpt-corrupt", fast: true)
            path = dir.path + "/ckpt"
            engine = try makeEngine(bufferSize: 64 << 10, bufferCount: 16)
            try await saveRecipe(path, seed: 42, rows: CorruptionTests.rows, ranks: CorruptionTests.ranks, engine: engine,
                                 options: CheckpointOptions(direct: true, directPayloadThreshold: 1024))
            for name in try FileManager.default.contentsOfDirectory(atPath: path) {
                originals[name] = try readFile(path + "/" + name)
            }
            sidecar = try JSONDecoder().decode(Sidecar.self, from: Data(originals[Checkpointer.checksumFileName] ?? []))
        }

        func restore() throws {
            let present = Set(try FileManager.default.contentsOfDirectory(atPath: path))
            for name in present where originals[name] == nil { try FileManager.default.removeItem(atPath: path + "/" + name) }
            for (name, bytes) in originals { try writeFile(path + "/" + name, bytes) }
        }

        var dataFiles: [String] { originals.keys.filter { $0.hasSuffix(".distcp") }.sorted() }

        func load(verify: Bool) async -> LoadOutcome {
            await loadAndCompare(path, seed: 42, rows: CorruptionTests.rows, engine: engine, verifyChecksums: verify)
        }

        func finish() async {
            await engine.shutdown()
            dir.cleanup()
        }
    }

    /// Tallies outcomes per damage class; records an issue for every forbidden one.
    struct Tally {
        var counts: [String: Int] = [:]
        mutating func note(_ key: String) { counts[key, default: 0] += 1 }
        func summary(_ title: String) -> String {
            "corruption: \(title): " + counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
    }

    /// Checks one damaged load. `mustDetect`: wrong data is a failure (else it is counted as
    /// undetectable). `naming`: strings the refusal must contain.
    static func check(
        _ outcome: LoadOutcome, what: String, verify: Bool, mustDetect: Bool, naming: [String], tally: inout Tally,
        knownIssue: String? = nil
    ) {
        switch outcome {
        case .matches:
            tally.note("\(verify ? "verified" : "plain"): unaffected")
        case .wrongData(let detail):
            if mustDetect {
                if let knownIssue {
                    withKnownIssue(Comment(rawValue: knownIssue)) { Issue.record("\(what) (verify \(verify)): silently wrong data: \(detail)") }
                } else {
                    Issue.record("\(what) (verify \(verify)): silently wrong data: \(detail)")
                }
            }
            tally.note("\(verify ? "verified" : "plain"): UNDETECTED")
        case .refused(let error):
            tally.note("\(verify ? "verified" : "plain"): refused")
            guard let error = error as? CheckpointError, [.corrupt, .incompleteCheckpoint, .mismatch].contains(error.code) else {
                Issue.record("\(what) (verify \(verify)): refused with an unexpected error: \(error)")
                return
            }
            for part in naming where !error.description.contains(part) {
                Issue.record("\(what) (verify \(verify)): error does not name '\(part)': \(error)")
            }
        }
    }

    @Test func payloadBitFlipsAreNamedByChecksums() async throws {
        let s = try await Subject()
        var rng = SplitMix64(seed: 1)
        var tally = Tally()
        for entry in s.sidecar.entries where entry.payloadLength > 0 {
            let name = entry.file
            var bytes = try #require(s.originals[name])
            let at = entry.payloadOffset + Int.random(in: 0..<entry.payloadLength, using: &rng)
            bytes[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            try writeFile(s.path + "/" + name, bytes)
            let what = "bit flip in the payload of \(entry.fqn) \(entry.offsets.map { "\($0)" } ?? "") in \(name) at \(at)"
            // Tensors: the checksum error names tensor, chunk and file; values are decoded first
            // and may be refused by their own structure.
            let naming = entry.offsets == nil ? [entry.fqn] : ["checksum mismatch", entry.fqn, "\(entry.offsets ?? [])", name]
            Self.check(await s.load(verify: true), what: what, verify: true, mustDetect: true, naming: naming, tally: &tally)
            if case .matches = await s.load(verify: true) { Issue.record("\(what): not detected with checksums") }
            Self.check(await s.load(verify: false), what: what, verify: false, mustDetect: entry.offsets == nil, naming: [], tally: &tally)
            try s.restore()
        }
        print(Self.summary("payload bit flips", tally))
        await s.finish()
    }

    static func summary(_ title: String, _ tally: Tally) -> String { tally.summary(title) }

    @Test func recordHeaderBitFlipsNeverGiveWrongData() async throws {
        let s = try await Subject()
        var rng = SplitMix64(seed: 2)
        var tally = Tally()
        for entry in s.sidecar.entries where entry.offsets != nil {
            let name = entry.file
            // Every bit of a record's zip/pickle head would be slow; sample 12 per record,
            // plus the record's tail (zip trailer records).
            let headRange = entry.recordOffset..<entry.payloadOffset
            let tailRange = (entry.payloadOffset + entry.payloadLength)..<(entry.recordOffset + entry.recordLength)
            for k in 0..<16 {
                let range = k < 12 || tailRange.isEmpty ? headRange : tailRange
                guard !range.isEmpty else { continue }
                var bytes = try #require(s.originals[name])
                let at = Int.random(in: range, using: &rng)
                let bit = UInt8.random(in: 0..<8, using: &rng)
                bytes[at] ^= 1 << bit
                try writeFile(s.path + "/" + name, bytes)
                let what = "bit \(bit) flipped in the record of \(entry.fqn) \(entry.offsets ?? []) in \(name) at \(at)"
                let extraLength = Self.dataExtraLengthField(bytes, entry)
                let known = extraLength.contains(at) ? Self.extraLengthBug : nil
                for verify in [true, false] {
                    Self.check(await s.load(verify: verify), what: what, verify: verify, mustDetect: true, naming: [name], tally: &tally, knownIssue: known)
                }
                try s.restore()
            }
        }
        print(Self.summary("record header bit flips", tally))
        await s.finish()
    }

    static let extraLengthBug =
        "bug: TorchTensorRecord.locate trusts the extra-field length in data/<key>'s local header; the payload offset moves"

    /// File offsets of the 2-byte extra-field length in the local header of `data/<key>` (the
    /// last local header before the payload).
    static func dataExtraLengthField(_ bytes: [UInt8], _ entry: SidecarEntry) -> Range<Int> {
        var k = entry.payloadOffset - 30
        while k >= entry.recordOffset {
            if bytes[k] == 0x50, bytes[k + 1] == 0x4B, bytes[k + 2] == 0x03, bytes[k + 3] == 0x04 { return (k + 28)..<(k + 30) }
            k -= 1
        }
        return 0..<0
    }

    /// Every record's `data/<key>` extra-field length, off by 2, 4 or 64: the payload must never
    /// be read from the wrong place.
    @Test func shiftedPayloadOffsetsAreRefused() async throws {
        let s = try await Subject()
        var tally = Tally()
        for entry in s.sidecar.entries where entry.offsets != nil && entry.payloadLength > 0 {
            let field = Self.dataExtraLengthField(try #require(s.originals[entry.file]), entry)
            try #require(!field.isEmpty)
            for delta in [-2, -4, -64, 2] {
                var bytes = try #require(s.originals[entry.file])
                let value = Int(bytes[field.lowerBound]) | Int(bytes[field.lowerBound + 1]) << 8
                guard value + delta >= 0 else { continue }
                bytes[field.lowerBound] = UInt8((value + delta) & 0xFF)
                bytes[field.lowerBound + 1] = UInt8((value + delta) >> 8)
                try writeFile(s.path + "/" + entry.file, bytes)
                let what = "extra length of \(entry.fqn) \(entry.offsets ?? []) in \(entry.file) changed by \(delta)"
                Self.check(await s.load(verify: true), what: what, verify: true, mustDetect: true, naming: [entry.file], tally: &tally)
                Self.check(await s.load(verify: false), what: what, verify: false, mustDetect: true, naming: [entry.file], tally: &tally)
                try s.restore()
            }
        }
        print(Self.summary("shifted payload offsets", tally))
        await s.finish()
    }

    @Test func metadataBitFlipsAreRefusedOrHarmless() async throws {
        let s = try await Subject()
        var rng = SplitMix64(seed: 3)
        var tally = Tally()
        let original = try #require(s.originals[".metadata"])
        for _ in 0..<150 {
            var bytes = original
            let at = Int.random(in: 0..<bytes.count, using: &rng)
            let bit = UInt8.random(in: 0..<8, using: &rng)
            bytes[at] ^= 1 << bit
            try writeFile(s.path + "/.metadata", bytes)
            let what = "bit \(bit) flipped in .metadata at \(at)"
            Self.check(await s.load(verify: true), what: what, verify: true, mustDetect: true, naming: [], tally: &tally)
            // Without checksums a moved record offset or swapped chunk offsets can point at
            // another record of the same shape: counted, not failed.
            Self.check(await s.load(verify: false), what: what, verify: false, mustDetect: false, naming: [], tally: &tally)
        }
        try s.restore()
        print(Self.summary(".metadata bit flips", tally))
        await s.finish()
    }

    @Test func sidecarDamageIsDetectedWhenVerifying() async throws {
        let s = try await Subject()
        var rng = SplitMix64(seed: 4)
        var tally = Tally()
        let name = Checkpointer.checksumFileName
        let original = try #require(s.originals[name])
        for k in 0..<60 {
            var bytes = original
            if k < 50 {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            } else {
                bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
            }
            try writeFile(s.path + "/" + name, bytes)
            let what = "sidecar damage #\(k)"
            Self.check(await s.load(verify: true), what: what, verify: true, mustDetect: true, naming: [], tally: &tally)
            // The sidecar is not read without verification.
            if case .matches = await s.load(verify: false) {} else { Issue.record("\(what): plain load affected") }
        }
        try FileManager.default.removeItem(atPath: s.path + "/" + name)
        Self.check(await s.load(verify: true), what: "sidecar deleted", verify: true, mustDetect: true, naming: [name, "missing"], tally: &tally)
        try s.restore()
        print(Self.summary("sidecar damage", tally))
        await s.finish()
    }

    @Test func truncatedFilesAreRefusedNamingTheFile() async throws {
        let s = try await Subject()
        var tally = Tally()
        for name in s.dataFiles + [".metadata"] {
            let original = try #require(s.originals[name])
            let n = original.count
            var points = Set([0, 1, 29, 30, 64, n / 3, n / 2, n - 4097, n - 4096, n - 22, n - 1])
            for k in 1..<8 { points.insert(n * k / 8) }
            for point in points.sorted() where point >= 0 && point < n {
                try writeFile(s.path + "/" + name, Array(original.prefix(point)))
                let what = "\(name) truncated to \(point) of \(n) bytes"
                let naming = name == ".metadata" ? [".metadata"] : [name]
                for verify in [true, false] {
                    let outcome = await s.load(verify: verify)
                    if case .matches = outcome { Issue.record("\(what) (verify \(verify)): loaded as if whole") }
                    Self.check(outcome, what: what, verify: verify, mustDetect: true, naming: naming, tally: &tally)
                }
            }
            try s.restore()
        }
        print(Self.summary("truncations", tally))
        await s.finish()
    }

    @Test func swappedAndDeletedFilesAreDetected() async throws {
        let s = try await Subject()
        var tally = Tally()
        let files = s.dataFiles
        for i in 0..<files.count {
            for j in (i + 1)..<files.count {
                try writeFile(s.path + "/" + files[i], try #require(s.originals[files[j]]))
                try writeFile(s.path + "/" + files[j], try #require(s.originals[files[i]]))
                let what = "\(files[i]) and \(files[j]) swapped"
                let verified = await s.load(verify: true)
                if case .matches = verified { Issue.record("\(what): loaded with checksums") }
                Self.check(verified, what: what, verify: true, mustDetect: true, naming: [".distcp"], tally: &tally)
                // Same-shaped shards at the same offsets cannot be told apart without checksums.
                Self.check(await s.load(verify: false), what: what, verify: false, mustDetect: false, naming: [], tally: &tally)
                try s.restore()
            }
        }
        for name in files {
            try FileManager.default.removeItem(atPath: s.path + "/" + name)
            for verify in [true, false] {
                let outcome = await s.load(verify: verify)
                if case .matches = outcome { Issue.record("\(name) deleted: loaded") }
                Self.check(outcome, what: "\(name) deleted", verify: verify, mustDetect: true, naming: [name], tally: &tally)
            }
            try s.restore()
        }
        try FileManager.default.removeItem(atPath: s.path + "/.metadata")
        let outcome = await s.load(verify: false)
        if case .refused(let error) = outcome {
            #expect(isCheckpointError(error, .incompleteCheckpoint), "\(error)")
        } else {
            Issue.record(".metadata deleted: \(outcome)")
        }
        try s.restore()
        print(Self.summary("swaps and deletions", tally))
        await s.finish()
    }
}
