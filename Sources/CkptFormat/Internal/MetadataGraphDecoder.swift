/// Decodes `DCPMetadata` straight from a parsed ``PickleGraph``, without building a
/// ``PickleValue`` tree. It accepts exactly what ``MetadataDecoder`` accepts on the materialized
/// tree and gives the same result; on any mismatch it throws a placeholder error, and the caller
/// reruns ``MetadataDecoder`` on the materialized tree for the precise error (malformed input only).
struct MetadataGraphDecoder {
    /// What an interned global is, for the globals a `.metadata` graph uses.
    enum GlobalTag: Equatable {
        case other
        case metadata, tensorStorageMetadata, bytesStorageMetadata, tensorProperties, chunkStorageMetadata
        case metadataIndex, storageMeta, memFormatEncoding, storageInfo, getLayout, torchSize
        case dtype(DType)
        case pathlib(String)

        init(module: String, name: String) {
            switch module {
            case MetadataDecoder.md:
                switch name {
                case "Metadata": self = .metadata
                case "TensorStorageMetadata": self = .tensorStorageMetadata
                case "BytesStorageMetadata": self = .bytesStorageMetadata
                case "TensorProperties": self = .tensorProperties
                case "ChunkStorageMetadata": self = .chunkStorageMetadata
                case "MetadataIndex": self = .metadataIndex
                case "StorageMeta": self = .storageMeta
                case "_MEM_FORMAT_ENCODING": self = .memFormatEncoding
                default: self = .other
                }
            case "torch.distributed.checkpoint.filesystem": self = name == "_StorageInfo" ? .storageInfo : .other
            case "torch.serialization": self = name == "_get_layout" ? .getLayout : .other
            case "torch":
                if name == "Size" {
                    self = .torchSize
                } else if let d = DType(torchName: name) {
                    self = .dtype(d)
                } else {
                    self = .other
                }
            case "pathlib": self = .pathlib(name)
            default: self = .other
            }
        }
    }

    /// The state dict(s) of an object: one dict, or the two of a `(dict_state, slots_state)`
    /// tuple (`-1`: none).
    struct State {
        var first: Int32 = -1
        var second: Int32 = -1
    }

    typealias Node = PickleGraph.Node

    let graph: PickleGraph
    let tags: [GlobalTag]

    init(graph: PickleGraph) {
        self.graph = graph
        tags = graph.globals.map { GlobalTag(module: $0.module, name: $0.name) }
    }

    /// Placeholder for "not what MetadataDecoder accepts"; replaced by the reference decoder's error.
    static let mismatch = FormatError(.invalidMetadata, "not a DCP Metadata object graph", offset: 0)

    @inline(__always)
    func node(_ id: Int32) -> Node { graph.nodes[Int(id)] }

    // MARK: Leaves

    /// Whether `id` is the string `key` (Swift `String` equality, as `PickleValue ==`).
    @inline(__always)
    func isKey(_ id: Int32, _ key: StaticString) -> Bool {
        let n = node(id)
        guard n.kind == .string else { return false }
        let bytes = graph.bytes(n)
        let equal = key.withUTF8Buffer { k in
            guard k.count == bytes.count else { return false }
            for i in 0..<k.count where k[i] != bytes[i] { return false }
            return true
        }
        if equal { return true }
        // Two ASCII strings are equal only byte for byte; anything else: canonical equivalence.
        if PickleMachine.isASCII(bytes) { return false }
        return graph.string(n) == key.description
    }

    @inline(__always)
    func string(_ id: Int32?) throws(FormatError) -> String {
        guard let id else { throw Self.mismatch }
        let n = node(id)
        guard n.kind == .string else { throw Self.mismatch }
        return graph.string(n)
    }

    @inline(__always)
    func isNone(_ id: Int32?) -> Bool {
        guard let id else { return true }
        return node(id).kind == .none
    }

    func optionalString(_ id: Int32?) throws(FormatError) -> String? {
        if isNone(id) { return nil }
        return try string(id)
    }

    @inline(__always)
    func int(_ id: Int32?) throws(FormatError) -> Int {
        guard let id else { throw Self.mismatch }
        let n = node(id)
        guard n.kind == .int else { throw Self.mismatch }
        return n.a
    }

    func bool(_ id: Int32) throws(FormatError) -> Bool {
        let n = node(id)
        guard n.kind == .bool || n.kind == .int else { throw Self.mismatch }
        return n.a != 0
    }

    /// A tuple or list's elements.
    @inline(__always)
    func sequence(_ id: Int32) throws(FormatError) -> PickleGraph.Children {
        let n = node(id)
        guard n.kind == .tuple || n.kind == .list else { throw Self.mismatch }
        return n.children
    }

    func ints(_ id: Int32) throws(FormatError) -> [Int] {
        let c = try sequence(id)
        var out: [Int] = []
        out.reserveCapacity(Int(c.count))
        var cursor = PickleGraph.ChildCursor(c)
        while let x = cursor.next(graph) { out.append(try int(x)) }
        return out
    }

    /// `torch.Size((…))`, or a plain tuple/list.
    func size(_ id: Int32?) throws(FormatError) -> [Int] {
        guard let id else { throw Self.mismatch }
        let n = node(id)
        if n.kind == .object {
            let o = graph.objects[n.a]
            guard tag(o) == .torchSize, o.construction == .reduce else { throw Self.mismatch }
            let args = node(o.args).children
            guard args.count <= 1 else { throw Self.mismatch }
            return args.count == 0 ? [] : try ints(graph.child(args, at: 0))
        }
        return try ints(id)
    }

    // MARK: Objects

    @inline(__always)
    func tag(_ o: PickleGraph.Object) -> GlobalTag { tags[node(o.callable).a] }

    /// The object `id` if it is an object whose callable has `tag`.
    @inline(__always)
    func object(_ id: Int32, _ tag: GlobalTag) -> PickleGraph.Object? {
        let n = node(id)
        guard n.kind == .object else { return nil }
        let o = graph.objects[n.a]
        return self.tag(o) == tag ? o : nil
    }

    /// The state of a `tag` object (as `MetadataDecoder.object`).
    func state(_ id: Int32, _ tag: GlobalTag) throws(FormatError) -> State {
        guard let o = object(id, tag) else { throw Self.mismatch }
        guard o.state >= 0 else { return State() }
        let s = node(o.state)
        switch s.kind {
        case .dict: return State(first: o.state)
        case .tuple where s.children.count == 2:
            let a = graph.child(s.children, at: 0), b = graph.child(s.children, at: 1)
            return State(first: node(a).kind == .dict ? a : -1, second: node(b).kind == .dict ? b : -1)
        default: throw Self.mismatch
        }
    }

    /// The value of the last entry named `key` (as `MetadataDecoder.field`).
    func field(_ state: State, _ key: StaticString) -> Int32? {
        var found: Int32?
        if state.first >= 0 { field(state.first, key, &found) }
        if state.second >= 0 { field(state.second, key, &found) }
        return found
    }

    @inline(__always)
    func field(_ dict: Int32, _ key: StaticString, _ found: inout Int32?) {
        var cursor = PickleGraph.ChildCursor(node(dict).children)
        while let k = cursor.next(graph), let v = cursor.next(graph) {
            if isKey(k, key) { found = v }
        }
    }

    /// Calls `body` with each key, value pair of the state's dicts, in order.
    @inline(__always)
    func forEachEntry(_ state: State, _ body: (Int32, Int32) throws(FormatError) -> Void) throws(FormatError) {
        if state.first >= 0 { try forEachPair(state.first, body) }
        if state.second >= 0 { try forEachPair(state.second, body) }
    }

    /// Calls `body` with each key, value pair of a dict node.
    @inline(__always)
    func forEachPair(_ dict: Int32, _ body: (Int32, Int32) throws(FormatError) -> Void) throws(FormatError) {
        var cursor = PickleGraph.ChildCursor(node(dict).children)
        while let k = cursor.next(graph), let v = cursor.next(graph) { try body(k, v) }
    }

    // MARK: DCP objects

    func metadata(_ root: Int32) throws(FormatError) -> DCPMetadata {
        let state = try self.state(root, .metadata)
        var out = DCPMetadata(version: nil)
        guard let sdm = field(state, "state_dict_metadata"), node(sdm).kind == .dict else { throw Self.mismatch }
        out.stateDictMetadata.reserveCapacity(Int(node(sdm).children.count / 2))
        try forEachPair(sdm) { (k, v) throws(FormatError) in
            out.stateDictMetadata[try string(k)] = try storageMetadata(v)
        }
        let pd = field(state, "planner_data")
        if !isNone(pd), let pd {
            guard node(pd).kind == .dict else { throw Self.mismatch }
            var map = OrderedMap<String, [PlannerPathElement]>()
            map.reserveCapacity(Int(node(pd).children.count / 2))
            try forEachPair(pd) { (k, v) throws(FormatError) in
                let fqn = try string(k)
                let path = try sequence(v)
                var elements: [PlannerPathElement] = []
                elements.reserveCapacity(Int(path.count))
                var cursor = PickleGraph.ChildCursor(path)
                while let p = cursor.next(graph) {
                    let n = node(p)
                    switch n.kind {
                    case .string: elements.append(.key(graph.string(n)))
                    case .int: elements.append(.index(n.a))
                    default: throw Self.mismatch
                    }
                }
                map[fqn] = elements
            }
            out.plannerData = map
        }
        let sd = field(state, "storage_data")
        if !isNone(sd), let sd {
            guard node(sd).kind == .dict else { throw Self.mismatch }
            out.storageData.reserveCapacity(Int(node(sd).children.count / 2))
            try forEachPair(sd) { (k, v) throws(FormatError) in
                let index = try metadataIndex(k)
                out.storageData[index] = try storageInfo(v)
            }
        }
        let sm = field(state, "storage_meta")
        if !isNone(sm), let sm { out.storageMeta = try storageMeta(sm) }
        out.version = try optionalString(field(state, "version"))
        return out
    }

    func storageMetadata(_ id: Int32) throws(FormatError) -> StorageMetadata {
        if object(id, .bytesStorageMetadata) != nil { return .bytes }
        let s = try state(id, .tensorStorageMetadata)
        guard let p = field(s, "properties") else { throw Self.mismatch }
        let props = try properties(p)
        let size = try self.size(field(s, "size"))
        guard let chunkList = field(s, "chunks"), node(chunkList).kind == .list else { throw Self.mismatch }
        let chunkIDs = node(chunkList).children
        var chunks: [ChunkStorageMetadata] = []
        chunks.reserveCapacity(Int(chunkIDs.count))
        var cursor = PickleGraph.ChildCursor(chunkIDs)
        while let c = cursor.next(graph) {
            let cs = try state(c, .chunkStorageMetadata)
            let offsets = try self.size(field(cs, "offsets"))
            let sizes = try self.size(field(cs, "sizes"))
            guard offsets.count == size.count, sizes.count == size.count else { throw Self.mismatch }
            chunks.append(ChunkStorageMetadata(offsets: offsets, sizes: sizes))
        }
        return .tensor(TensorStorageMetadata(properties: props, size: size, chunks: chunks))
    }

    func properties(_ id: Int32) throws(FormatError) -> TensorProperties {
        guard let o = object(id, .tensorProperties), o.state >= 0 else { throw Self.mismatch }
        var dtypeV: Int32?, layoutV: Int32?, rg: Int32?, mf: Int32?, pin: Int32?, strides: Int32?
        let s = node(o.state)
        switch s.kind {
        case .tuple where s.children.count == 5 || s.children.count == 6:
            var cursor = PickleGraph.ChildCursor(s.children)
            dtypeV = cursor.next(graph)
            layoutV = cursor.next(graph)
            rg = cursor.next(graph)
            mf = cursor.next(graph)
            pin = cursor.next(graph)
            strides = cursor.next(graph)
        case .dict:
            let st = State(first: o.state)
            dtypeV = field(st, "dtype")
            layoutV = field(st, "layout")
            rg = field(st, "requires_grad")
            mf = field(st, "memory_format")
            pin = field(st, "pin_memory")
            strides = field(st, "strides")
        default:
            throw Self.mismatch
        }
        guard let dtypeV, node(dtypeV).kind == .global, case .dtype(let dtype) = tags[node(dtypeV).a] else { throw Self.mismatch }
        var layout = "torch.strided"
        if !isNone(layoutV), let layoutV {
            guard let lo = object(layoutV, .getLayout) else { throw Self.mismatch }
            let args = node(lo.args).children
            guard args.count == 1 else { throw Self.mismatch }
            layout = try string(graph.child(args, at: 0))
        }
        var memoryFormat = 0
        if !isNone(mf), let mf {
            guard let mo = object(mf, .memFormatEncoding) else { throw Self.mismatch }
            let args = node(mo.args).children
            guard args.count == 1 else { throw Self.mismatch }
            memoryFormat = try int(graph.child(args, at: 0))
        }
        var strideValues: [Int]?
        if !isNone(strides), let strides { strideValues = try ints(strides) }
        return TensorProperties(
            dtype: dtype, layout: layout, requiresGrad: isNone(rg) ? false : try bool(rg ?? -1),
            memoryFormat: memoryFormat, pinMemory: isNone(pin) ? false : try bool(pin ?? -1), strides: strideValues)
    }

    func metadataIndex(_ id: Int32) throws(FormatError) -> MetadataIndex {
        let s = try state(id, .metadataIndex)
        var fqnV: Int32?, offsetV: Int32?, indexV: Int32?
        // One pass over the entries (the last of equal keys wins, as in `field`).
        try forEachEntry(s) { (k, v) throws(FormatError) in
            if isKey(k, "fqn") {
                fqnV = v
            } else if isKey(k, "offset") {
                offsetV = v
            } else if isKey(k, "index") {
                indexV = v
            }
        }
        let fqn = try string(fqnV)
        var offset: [Int]?
        if !isNone(offsetV) { offset = try size(offsetV) }
        var index: Int?
        if !isNone(indexV) { index = try int(indexV) }
        return MetadataIndex(fqn: fqn, offset: offset, index: index)
    }

    func storageInfo(_ id: Int32) throws(FormatError) -> StorageInfo {
        let s = try state(id, .storageInfo)
        var pathV: Int32?, offsetV: Int32?, lengthV: Int32?, transformsV: Int32?
        try forEachEntry(s) { (k, v) throws(FormatError) in
            if isKey(k, "relative_path") {
                pathV = v
            } else if isKey(k, "offset") {
                offsetV = v
            } else if isKey(k, "length") {
                lengthV = v
            } else if isKey(k, "transform_descriptors") {
                transformsV = v
            }
        }
        let path = try string(pathV)
        let offset = try int(offsetV)
        let length = try int(lengthV)
        guard offset >= 0, length >= 0 else { throw Self.mismatch }
        var transforms: [String]?
        if !isNone(transformsV), let transformsV {
            var names: [String] = []
            var cursor = PickleGraph.ChildCursor(try sequence(transformsV))
            while let x = cursor.next(graph) { names.append(try string(x)) }
            transforms = names
        }
        return StorageInfo(relativePath: path, offset: offset, length: length, transformDescriptors: transforms)
    }

    func storageMeta(_ id: Int32) throws(FormatError) -> StorageMeta {
        let s = try state(id, .storageMeta)
        var out = StorageMeta()
        let cid = field(s, "checkpoint_id")
        if !isNone(cid), let cid {
            let n = node(cid)
            switch n.kind {
            case .string: out.checkpointID = .string(graph.string(n))
            case .object:
                let o = graph.objects[n.a]
                guard case .pathlib(let cls) = tag(o) else { throw Self.mismatch }
                var comps: [String] = []
                var cursor = PickleGraph.ChildCursor(node(o.args).children)
                while let p = cursor.next(graph) { comps.append(try string(p)) }
                out.checkpointID = .path(className: cls, components: comps)
            default: throw Self.mismatch
            }
        }
        out.saveID = try optionalString(field(s, "save_id"))
        out.loadID = try optionalString(field(s, "load_id"))
        let modules = field(s, "modules")
        if !isNone(modules), let modules {
            var cursor = PickleGraph.ChildCursor(try sequence(modules))
            while let x = cursor.next(graph) { out.modules.append(try string(x)) }
        }
        return out
    }
}
