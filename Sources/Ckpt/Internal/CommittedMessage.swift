import CkptFormat

/// A rank's error as sent to its peers: code, message and the underlying error's description.
struct ErrorMessage: WireMessage, Equatable {
    var code: String
    var message: String
    var cause: String?

    init(_ error: CheckpointError) {
        code = error.code.rawValue
        message = error.message
        cause = error.underlying.map { "\($0)" }
    }

    init(code: String, message: String, cause: String?) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// Always sent as a payload (it is the error).
    var error: String? { nil }
    init(error: String) { self.init(code: CheckpointError.Code.aborted.rawValue, message: error, cause: nil) }

    static var wireTag: WireTag { .error }

    func writePayload(to w: inout WireWriter) {
        w.string(code)
        w.string(message)
        w.optionalString(cause)
    }

    init(payload r: inout WireReader) throws(CheckpointError) {
        code = try r.string("the error code")
        message = try r.string("the error message")
        cause = try r.optionalString("the error's cause")
    }

    /// The error as the receiving rank throws it.
    var checkpointError: CheckpointError {
        CheckpointError(
            CheckpointError.Code(rawValue: code) ?? .aborted, message, underlying: cause.map(PeerErrorDescription.init))
    }
}

/// The description of an error that happened on another rank (its type does not cross the wire).
struct PeerErrorDescription: Error, CustomStringConvertible {
    var description: String
}

/// Rank 0's answer at the start of a load: the decoded and validated `.metadata` (and checksum
/// sidecar), or the error that every rank throws. Decoding this is much cheaper than decoding the
/// pickle again on every rank.
struct CommittedMessage: WireMessage, Equatable {
    enum Content: Equatable {
        case committed(DCPMetadata, ChecksumSidecar?)
        case failure(ErrorMessage)
    }
    var content: Content

    init(_ content: Content) { self.content = content }

    /// Always sent as a payload (a failure is part of it, with its code).
    var error: String? { nil }
    init(error: String) { content = .failure(ErrorMessage(error: error)) }

    static var wireTag: WireTag { .committed }

    func writePayload(to w: inout WireWriter) {
        switch content {
        case .failure(let error):
            w.byte(1)
            error.writePayload(to: &w)
        case .committed(let metadata, let sidecar):
            w.byte(0)
            MetadataWire.write(metadata, to: &w)
            if let sidecar {
                w.bool(true)
                MetadataWire.write(sidecar, to: &w)
            } else {
                w.bool(false)
            }
        }
    }

    init(payload r: inout WireReader) throws(CheckpointError) {
        let at = r.position
        switch try r.byte("the load answer kind") {
        case 0:
            let metadata = try MetadataWire.readMetadata(&r)
            let sidecar = try r.bool("whether a checksum sidecar follows") ? try MetadataWire.readSidecar(&r) : nil
            content = .committed(metadata, sidecar)
        case 1:
            content = .failure(try ErrorMessage(payload: &r))
        case let other:
            throw r.failure("the load answer kind (0 metadata, 1 error), found \(other)", at: at)
        }
    }
}

/// Binary form of a decoded `.metadata` and checksum sidecar (every field, so a round trip gives an
/// equal value).
enum MetadataWire {
    static func write(_ m: DCPMetadata, to w: inout WireWriter) {
        w.count(m.stateDictMetadata.count)
        for (fqn, entry) in zip(m.stateDictMetadata.keys, m.stateDictMetadata.values) {
            w.interned(fqn)
            switch entry {
            case .bytes:
                w.byte(0)
            case .tensor(let tensor):
                w.byte(1)
                let p = tensor.properties
                w.interned(p.dtype.torchName, slot: 1)
                w.interned(p.layout, slot: 2)
                w.bool(p.requiresGrad)
                w.int(p.memoryFormat)
                w.bool(p.pinMemory)
                w.optionalInts(p.strides)
                w.ints(tensor.size)
                w.count(tensor.chunks.count)
                for chunk in tensor.chunks {
                    w.ints(chunk.offsets)
                    w.ints(chunk.sizes)
                }
            }
        }
        if let planner = m.plannerData {
            w.bool(true)
            w.count(planner.count)
            for (fqn, path) in zip(planner.keys, planner.values) {
                w.interned(fqn, slot: 3)
                w.count(path.count)
                for element in path {
                    switch element {
                    case .key(let key):
                        w.byte(0)
                        w.interned(key, slot: 2)
                    case .index(let index):
                        w.byte(1)
                        w.int(index)
                    }
                }
            }
        } else {
            w.bool(false)
        }
        w.count(m.storageData.count)
        for (index, info) in zip(m.storageData.keys, m.storageData.values) {
            w.interned(index.fqn)
            w.optionalInts(index.offset)
            if let i = index.index {
                w.bool(true)
                w.int(i)
            } else {
                w.bool(false)
            }
            w.interned(info.relativePath, slot: 1)
            w.int(info.offset)
            w.int(info.length)
            if let descriptors = info.transformDescriptors {
                w.bool(true)
                w.count(descriptors.count)
                for d in descriptors { w.interned(d, slot: 2) }
            } else {
                w.bool(false)
            }
        }
        if let meta = m.storageMeta {
            w.bool(true)
            switch meta.checkpointID {
            case nil:
                w.byte(0)
            case .path(let className, let components)?:
                w.byte(1)
                w.string(className)
                w.count(components.count)
                for c in components { w.string(c) }
            case .string(let s)?:
                w.byte(2)
                w.string(s)
            }
            w.optionalString(meta.saveID)
            w.optionalString(meta.loadID)
            w.count(meta.modules.count)
            for module in meta.modules { w.string(module) }
        } else {
            w.bool(false)
        }
        w.optionalString(m.version)
    }

    static func readMetadata(_ r: inout WireReader) throws(CheckpointError) -> DCPMetadata {
        var m = DCPMetadata(version: nil)
        let entries = try r.count("the state dict entry count", minimumItemBytes: 2)
        m.stateDictMetadata.reserveCapacity(entries)
        for _ in 0..<entries {
            let fqn = try r.interned("a state dict fqn")
            let at = r.position
            switch try r.byte("a state dict entry kind") {
            case 0:
                m.stateDictMetadata[fqn] = .bytes
            case 1:
                let dtypeAt = r.position
                let dtypeName = try r.interned("a tensor dtype")
                guard let dtype = DType(torchName: dtypeName) else {
                    throw r.failure("a torch dtype name, found '\(dtypeName)'", at: dtypeAt)
                }
                let properties = TensorProperties(
                    dtype: dtype, layout: try r.interned("a tensor layout"), requiresGrad: try r.bool("requires_grad"),
                    memoryFormat: try r.int("a memory format"), pinMemory: try r.bool("pin_memory"),
                    strides: try r.optionalInts("tensor strides"))
                let size = try r.ints("a tensor size")
                let n = try r.count("a chunk count", minimumItemBytes: 2)
                var chunks: [ChunkStorageMetadata] = []
                chunks.reserveCapacity(n)
                for _ in 0..<n {
                    chunks.append(ChunkStorageMetadata(offsets: try r.ints("chunk offsets"), sizes: try r.ints("chunk sizes")))
                }
                m.stateDictMetadata[fqn] = .tensor(TensorStorageMetadata(properties: properties, size: size, chunks: chunks))
            case let other:
                throw r.failure("a state dict entry kind (0 bytes, 1 tensor), found \(other)", at: at)
            }
        }
        guard m.stateDictMetadata.count == entries else {
            throw r.failure("distinct state dict fqns", at: r.position)
        }
        if try r.bool("whether planner data follows") {
            var planner = OrderedMap<String, [PlannerPathElement]>()
            let n = try r.count("the planner data count", minimumItemBytes: 2)
            planner.reserveCapacity(n)
            for _ in 0..<n {
                let fqn = try r.interned("a planner data fqn")
                let length = try r.count("a planner path length", minimumItemBytes: 2)
                var path: [PlannerPathElement] = []
                path.reserveCapacity(length)
                for _ in 0..<length {
                    let at = r.position
                    switch try r.byte("a planner path element kind") {
                    case 0: path.append(.key(try r.interned("a planner path key")))
                    case 1: path.append(.index(try r.int("a planner path index")))
                    case let other: throw r.failure("a path element kind (0 key, 1 index), found \(other)", at: at)
                    }
                }
                planner[fqn] = path
            }
            guard planner.count == n else { throw r.failure("distinct planner data fqns", at: r.position) }
            m.plannerData = planner
        }
        let storage = try r.count("the storage entry count", minimumItemBytes: 6)
        m.storageData.reserveCapacity(storage)
        for _ in 0..<storage {
            let fqn = try r.interned("a storage fqn")
            let offset = try r.optionalInts("storage chunk offsets")
            let index = try r.bool("whether a storage index follows") ? try r.int("a storage index") : nil
            let path = try r.interned("a storage file")
            let fileOffset = try r.int("a storage offset")
            let length = try r.int("a storage length")
            var descriptors: [String]?
            if try r.bool("whether transform descriptors follow") {
                let n = try r.count("a transform descriptor count")
                var list: [String] = []
                list.reserveCapacity(n)
                for _ in 0..<n { list.append(try r.interned("a transform descriptor")) }
                descriptors = list
            }
            m.storageData[MetadataIndex(fqn: fqn, offset: offset, index: index)] = StorageInfo(
                relativePath: path, offset: fileOffset, length: length, transformDescriptors: descriptors)
        }
        guard m.storageData.count == storage else { throw r.failure("distinct storage entries", at: r.position) }
        if try r.bool("whether storage meta follows") {
            var meta = StorageMeta()
            let at = r.position
            switch try r.byte("a checkpoint id kind") {
            case 0:
                break
            case 1:
                let className = try r.string("a checkpoint id class")
                let n = try r.count("a checkpoint id component count")
                var components: [String] = []
                components.reserveCapacity(n)
                for _ in 0..<n { components.append(try r.string("a checkpoint id component")) }
                meta.checkpointID = .path(className: className, components: components)
            case 2:
                meta.checkpointID = .string(try r.string("a checkpoint id"))
            case let other:
                throw r.failure("a checkpoint id kind (0 none, 1 path, 2 string), found \(other)", at: at)
            }
            meta.saveID = try r.optionalString("a save id")
            meta.loadID = try r.optionalString("a load id")
            let n = try r.count("a module count")
            for _ in 0..<n { meta.modules.append(try r.string("a module name")) }
            m.storageMeta = meta
        }
        m.version = try r.optionalString("the metadata version")
        return m
    }

    static func write(_ s: ChecksumSidecar, to w: inout WireWriter) {
        w.string(s.saveID)
        w.count(s.entries.count)
        for e in s.entries {
            w.interned(e.fqn)
            w.optionalInts(e.offsets)
            w.interned(e.file, slot: 1)
            w.int(e.recordOffset)
            w.int(e.recordLength)
            w.int(e.payloadOffset)
            w.int(e.payloadLength)
            w.u64(e.xxh3Value)
        }
    }

    static func readSidecar(_ r: inout WireReader) throws(CheckpointError) -> ChecksumSidecar {
        var s = ChecksumSidecar(saveID: try r.string("the sidecar's save id"))
        let n = try r.count("the sidecar entry count", minimumItemBytes: 15)
        s.entries.reserveCapacity(n)
        for _ in 0..<n {
            s.entries.append(ChecksumSidecar.Entry(
                fqn: try r.interned("a sidecar fqn"), offsets: try r.optionalInts("sidecar chunk offsets"),
                file: try r.interned("a sidecar file"), recordOffset: try r.int("a sidecar record offset"),
                recordLength: try r.int("a sidecar record length"), payloadOffset: try r.int("a sidecar payload offset"),
                payloadLength: try r.int("a sidecar payload length"), xxh3Value: try r.u64("a sidecar XXH3")))
        }
        return s
    }
}
