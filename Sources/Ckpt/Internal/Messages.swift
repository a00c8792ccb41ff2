import CkptFormat
import CkptPlan

/// Messages exchanged by the ranks of a save or load through the ``Communicator``: plain bytes in
/// a compact binary form (see ``WireWriter``), so any transport carries them. Every message can
/// carry a rank's error instead of its payload, so that a failing rank still takes part in each
/// collective and nobody waits forever.
enum Wire {}

/// One rank's save items (DCP's local plan).
struct LocalPlanMessage: WireMessage, Equatable {
    struct Item: Equatable {
        var fqn: String
        /// nil for a BYTE_IO value.
        var dtype: String?
        var elementSize: Int?
        var globalShape: [Int]?
        var offsets: [Int]?
        var sizes: [Int]?
        var estimatedSize: Int?
    }
    var error: String?
    var items: [Item] = []
    /// fqn -> path (for planner_data).
    var paths: [PathMessage] = []

    init() {}
    init(error: String) { self.error = error }

    static var wireTag: WireTag { .localPlan }

    private enum Present {
        static let dtype: UInt8 = 1 << 0
        static let elementSize: UInt8 = 1 << 1
        static let globalShape: UInt8 = 1 << 2
        static let offsets: UInt8 = 1 << 3
        static let sizes: UInt8 = 1 << 4
        static let estimatedSize: UInt8 = 1 << 5
        static let all: UInt8 = (1 << 6) - 1
    }

    func writePayload(to w: inout WireWriter) {
        w.count(items.count)
        for item in items {
            w.interned(item.fqn)
            var present: UInt8 = 0
            if item.dtype != nil { present |= Present.dtype }
            if item.elementSize != nil { present |= Present.elementSize }
            if item.globalShape != nil { present |= Present.globalShape }
            if item.offsets != nil { present |= Present.offsets }
            if item.sizes != nil { present |= Present.sizes }
            if item.estimatedSize != nil { present |= Present.estimatedSize }
            w.byte(present)
            if let dtype = item.dtype { w.interned(dtype, slot: 1) }
            if let elementSize = item.elementSize { w.int(elementSize) }
            if let globalShape = item.globalShape { w.ints(globalShape) }
            if let offsets = item.offsets { w.ints(offsets) }
            if let sizes = item.sizes { w.ints(sizes) }
            if let estimatedSize = item.estimatedSize { w.int(estimatedSize) }
        }
        w.count(paths.count)
        for path in paths {
            w.interned(path.fqn, slot: 2)
            w.count(path.path.count)
            for element in path.path {
                switch element {
                case .key(let key):
                    w.byte(0)
                    w.interned(key, slot: 3)
                case .index(let index):
                    w.byte(1)
                    w.int(index)
                }
            }
        }
    }

    init(payload r: inout WireReader) throws(CheckpointError) {
        let itemCount = try r.count("the item count", minimumItemBytes: 2)
        items.reserveCapacity(itemCount)
        for _ in 0..<itemCount {
            let fqn = try r.interned("an item's fqn")
            let at = r.position
            let present = try r.byte("an item's field mask")
            guard present & ~Present.all == 0 else {
                throw r.failure("an item field mask below \(Present.all + 1), found \(present)", at: at)
            }
            var item = Item(fqn: fqn)
            if present & Present.dtype != 0 { item.dtype = try r.interned("an item's dtype") }
            if present & Present.elementSize != 0 { item.elementSize = try r.int("an item's element size") }
            if present & Present.globalShape != 0 { item.globalShape = try r.ints("an item's global shape") }
            if present & Present.offsets != 0 { item.offsets = try r.ints("an item's chunk offsets") }
            if present & Present.sizes != 0 { item.sizes = try r.ints("an item's chunk sizes") }
            if present & Present.estimatedSize != 0 { item.estimatedSize = try r.int("an item's estimated size") }
            items.append(item)
        }
        let pathCount = try r.count("the path count", minimumItemBytes: 2)
        paths.reserveCapacity(pathCount)
        for _ in 0..<pathCount {
            let fqn = try r.interned("a path's fqn")
            let n = try r.count("a path's length", minimumItemBytes: 2)
            var path: [PathElement] = []
            path.reserveCapacity(n)
            for _ in 0..<n {
                let at = r.position
                switch try r.byte("a path element kind") {
                case 0: path.append(.key(try r.interned("a path key")))
                case 1: path.append(.index(try r.int("a path index")))
                case let other: throw r.failure("a path element kind (0 key, 1 index), found \(other)", at: at)
                }
            }
            paths.append(PathMessage(fqn: fqn, path: path))
        }
    }
}

extension LocalPlanMessage.Item {
    init(fqn: String) { self.fqn = fqn }
}

/// An entry's path in the state dict (for DCP's planner_data).
struct PathMessage: Equatable {
    var fqn: String
    var path: [PathElement]

    init(fqn: String, path: [PathElement]) {
        self.fqn = fqn
        self.path = path
    }
}

/// The coordinator's answer: per rank, its files and the items in each.
struct GlobalPlanMessage: WireMessage, Equatable {
    struct File: Equatable {
        var name: String
        var items: [Int]
    }
    var error: String?
    var directory: String = ""
    var saveID: String = ""
    var files: [[File]] = []

    init(directory: String, saveID: String, files: [[File]]) {
        self.directory = directory
        self.saveID = saveID
        self.files = files
    }
    init(error: String) { self.error = error }

    static var wireTag: WireTag { .globalPlan }

    func writePayload(to w: inout WireWriter) {
        w.string(directory)
        w.string(saveID)
        w.count(files.count)
        for rankFiles in files {
            w.count(rankFiles.count)
            for file in rankFiles {
                w.string(file.name)
                w.ints(file.items)
            }
        }
    }

    init(payload r: inout WireReader) throws(CheckpointError) {
        directory = try r.string("the directory")
        saveID = try r.string("the save id")
        let ranks = try r.count("the rank count")
        files.reserveCapacity(ranks)
        for _ in 0..<ranks {
            let n = try r.count("a rank's file count", minimumItemBytes: 2)
            var rankFiles: [File] = []
            rankFiles.reserveCapacity(n)
            for _ in 0..<n {
                let name = try r.string("a file name")
                rankFiles.append(File(name: name, items: try r.ints("a file's items")))
            }
            files.append(rankFiles)
        }
    }
}

/// What a rank wrote.
struct WriteResultMessage: WireMessage, Equatable {
    struct Record: Equatable {
        var item: Int
        var file: String
        var offset: Int
        var length: Int
        var payloadOffset: Int
        var payloadLength: Int
        var xxh3: UInt64
    }
    var error: String?
    var records: [Record] = []

    init(records: [Record] = []) { self.records = records }
    init(error: String) { self.error = error }

    static var wireTag: WireTag { .writeResult }

    func writePayload(to w: inout WireWriter) {
        w.count(records.count)
        for record in records {
            w.int(record.item)
            w.interned(record.file)
            w.int(record.offset)
            w.int(record.length)
            w.int(record.payloadOffset)
            w.int(record.payloadLength)
            w.u64(record.xxh3)
        }
    }

    init(payload r: inout WireReader) throws(CheckpointError) {
        let n = try r.count("the record count", minimumItemBytes: 14)
        records.reserveCapacity(n)
        for _ in 0..<n {
            records.append(Record(
                item: try r.int("a record's item"), file: try r.interned("a record's file"),
                offset: try r.int("a record's offset"), length: try r.int("a record's length"),
                payloadOffset: try r.int("a record's payload offset"),
                payloadLength: try r.int("a record's payload length"), xxh3: try r.u64("a record's XXH3")))
        }
    }
}

/// The commit outcome, or the first error of any rank.
struct OutcomeMessage: WireMessage, Equatable {
    var error: String?

    init() {}
    init(error: String) { self.error = error }

    static var wireTag: WireTag { .outcome }

    func writePayload(to w: inout WireWriter) {}

    init(payload r: inout WireReader) throws(CheckpointError) {}
}
