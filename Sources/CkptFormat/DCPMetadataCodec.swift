extension DCPMetadata {
    /// Decodes a `.metadata` file (any pickle producing PyTorch's object graph) with the safe reader.
    ///
    /// The reader's limits and allow-list apply as for ``PickleReader/decode(_:)-(UnsafeRawBufferPointer)``
    /// (every limit, the expansion guard included, is checked on the whole pickle); the Swift
    /// model is then read straight from the parsed object graph, without building a
    /// ``PickleValue`` tree. The result, and the error for an input that is not a DCP `Metadata`
    /// graph, are those of ``init(pickle:)`` on the decoded tree.
    public init(decoding bytes: UnsafeRawBufferPointer, reader: PickleReader = PickleReader()) throws(FormatError) {
        let parsed = try reader.parseGraph(bytes)
        do {
            self = try MetadataGraphDecoder(graph: parsed.graph).metadata(parsed.root)
        } catch {
            // Not the expected shape: the tree decoder names what is wrong.
            let value = try parsed.graph.materialize(parsed.root, limits: reader.limits, offset: parsed.endOffset)
            self = try MetadataDecoder.metadata(value)
        }
    }

    /// Decodes a `.metadata` file held in an array.
    public init(decoding bytes: [UInt8], reader: PickleReader = PickleReader()) throws(FormatError) {
        self = try Self.decode(bytes, reader)
    }

    private static func decode(_ bytes: [UInt8], _ reader: PickleReader) throws(FormatError) -> DCPMetadata {
        do {
            return try bytes.withUnsafeBytes { raw in try DCPMetadata(decoding: raw, reader: reader) }
        } catch let e as FormatError {
            throw e
        } catch {
            throw FormatError(.invalidValue, "\(error)", offset: 0)
        }
    }

    /// The reference path of ``init(decoding:reader:)-(UnsafeRawBufferPointer,_)``: decode the
    /// ``PickleValue`` tree, then read the model from it (tests compare both paths).
    static func decodingTree(_ bytes: UnsafeRawBufferPointer, reader: PickleReader = PickleReader()) throws(FormatError) -> DCPMetadata {
        try MetadataDecoder.metadata(try reader.decode(bytes).value)
    }

    /// Decodes from an already unpickled tree.
    public init(pickle value: PickleValue) throws(FormatError) {
        self = try MetadataDecoder.metadata(value)
    }

    /// Encodes as `pickle.dump(metadata)` does: protocol 4 with framing, MEMOIZE after every
    /// memoizable object, and memo re-use of classes, strings, the shared layout and
    /// memory-format objects (spec §2.3).
    ///
    /// `style` picks which equal strings are shared through the memo, mirroring CPython object
    /// identity: `.gathered` for metadata assembled by a coordinator from plans gathered over a
    /// process group (fqn strings are distinct objects per use), `.singleProcess` for `no_dist`
    /// saves (one string object per fqn). Both load identically; the style only affects bytes.
    public func encoded(style: MetadataPickleStyle = .gathered) -> [UInt8] {
        var e = PickleEmitter(protocol: .v4, reuseStrings: true)
        e.begin()
        MetadataEncoder.metadata(self, style, &e)
        return e.finish()
    }
}

enum MetadataDecoder {
    static let md = "torch.distributed.checkpoint.metadata"

    static func fail(_ message: String) -> FormatError {
        FormatError(.invalidMetadata, message, offset: 0)
    }

    /// The object's state dict for a NEWOBJ of `module.name` (empty when there is no BUILD).
    static func object(_ v: PickleValue, _ module: String, _ name: String) throws(FormatError) -> [PickleDictEntry] {
        guard case .object(let o) = v, case .global(let m, let n) = o.callable, m == module, n == name else {
            throw fail("expected a \(module).\(name) object, found \(describe(v))")
        }
        switch o.state {
        case nil: return []
        case .dict(let e)?: return e
        case .tuple(let t)? where t.count == 2:
            // (dict_state, slots_state) form.
            var out: [PickleDictEntry] = []
            if case .dict(let a) = t[0] { out += a }
            if case .dict(let b) = t[1] { out += b }
            return out
        default: throw fail("\(name) state is not a dict")
        }
    }

    static func describe(_ v: PickleValue) -> String {
        switch v {
        case .object(let o):
            if let (m, n) = o.callableName { return "\(m).\(n)(…)" }
            return "object"
        case .none: return "None"
        case .string(let s): return "'\(s)'"
        case .int(let i): return "\(i)"
        case .dict: return "dict"
        case .list: return "list"
        case .tuple: return "tuple"
        default: return "\(v)"
        }
    }

    static func field(_ state: [PickleDictEntry], _ key: String) -> PickleValue? {
        state.last { $0.key == .string(key) }?.value
    }

    static func string(_ v: PickleValue?, _ what: String) throws(FormatError) -> String {
        guard case .string(let s)? = v else { throw fail("\(what) is not a string") }
        return s
    }

    static func optionalString(_ v: PickleValue?, _ what: String) throws(FormatError) -> String? {
        switch v {
        case nil, .none?: return nil
        case .string(let s)?: return s
        default: throw fail("\(what) is not a string or None")
        }
    }

    static func int(_ v: PickleValue?, _ what: String) throws(FormatError) -> Int {
        guard let i = v?.intValue else { throw fail("\(what) is not an int") }
        return i
    }

    static func ints(_ v: PickleValue, _ what: String) throws(FormatError) -> [Int] {
        guard let a = v.sequenceElements else { throw fail("\(what) is not a tuple of ints") }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for x in a {
            guard let i = x.intValue else { throw fail("\(what) holds a non-int") }
            out.append(i)
        }
        return out
    }

    /// `torch.Size((…))`, or a plain tuple/list.
    static func size(_ v: PickleValue?, _ what: String) throws(FormatError) -> [Int] {
        guard let v else { throw fail("\(what) missing") }
        if case .object(let o) = v, case .global("torch", "Size") = o.callable, o.construction == .reduce {
            guard case .tuple(let args) = o.args, args.count <= 1 else { throw fail("\(what): torch.Size arguments") }
            return args.isEmpty ? [] : try ints(args[0], what)
        }
        return try ints(v, what)
    }

    static func bool(_ v: PickleValue?, _ what: String) throws(FormatError) -> Bool {
        switch v {
        case .bool(let b)?: return b
        case .int(let i)?: return i != 0
        default: throw fail("\(what) is not a bool")
        }
    }

    static func metadata(_ v: PickleValue) throws(FormatError) -> DCPMetadata {
        let state = try object(v, md, "Metadata")
        var out = DCPMetadata(version: nil)
        guard case .dict(let sdm)? = field(state, "state_dict_metadata") else {
            throw fail("Metadata.state_dict_metadata is not a dict")
        }
        for e in sdm {
            let fqn = try string(e.key, "state_dict_metadata key")
            out.stateDictMetadata[fqn] = try storageMetadata(e.value, fqn)
        }
        switch field(state, "planner_data") {
        case nil, .none?: out.plannerData = nil
        case .dict(let pd)?:
            var map = OrderedMap<String, [PlannerPathElement]>()
            for e in pd {
                let fqn = try string(e.key, "planner_data key")
                guard let path = e.value.sequenceElements else { throw fail("planner_data['\(fqn)'] is not a tuple") }
                var elements: [PlannerPathElement] = []
                for p in path {
                    switch p {
                    case .string(let s): elements.append(.key(s))
                    case .int(let i):
                        guard let ii = Int(exactly: i) else { throw fail("planner_data index too large") }
                        elements.append(.index(ii))
                    default: throw fail("planner_data['\(fqn)'] element is neither str nor int")
                    }
                }
                map[fqn] = elements
            }
            out.plannerData = map
        default: throw fail("Metadata.planner_data is neither a dict nor None")
        }
        switch field(state, "storage_data") {
        case nil, .none?: break
        case .dict(let sd)?:
            for e in sd {
                let idx = try metadataIndex(e.key)
                out.storageData[idx] = try storageInfo(e.value)
            }
        default: throw fail("Metadata.storage_data is not a dict")
        }
        switch field(state, "storage_meta") {
        case nil, .none?: out.storageMeta = nil
        case let sm?: out.storageMeta = try storageMeta(sm)
        }
        out.version = try optionalString(field(state, "version"), "Metadata.version")
        return out
    }

    static func storageMetadata(_ v: PickleValue, _ fqn: String) throws(FormatError) -> StorageMetadata {
        if case .object(let o) = v, case .global(md, "BytesStorageMetadata") = o.callable {
            return .bytes
        }
        let s = try object(v, md, "TensorStorageMetadata")
        guard let p = field(s, "properties") else { throw fail("'\(fqn)': TensorStorageMetadata.properties missing") }
        let props = try properties(p, fqn)
        let size = try size(field(s, "size"), "'\(fqn)' size")
        guard case .list(let chunkValues)? = field(s, "chunks") else { throw fail("'\(fqn)': chunks is not a list") }
        var chunks: [ChunkStorageMetadata] = []
        chunks.reserveCapacity(chunkValues.count)
        for c in chunkValues {
            let cs = try object(c, md, "ChunkStorageMetadata")
            let offsets = try self.size(field(cs, "offsets"), "'\(fqn)' chunk offsets")
            let sizes = try self.size(field(cs, "sizes"), "'\(fqn)' chunk sizes")
            guard offsets.count == size.count, sizes.count == size.count else {
                throw fail("'\(fqn)': chunk rank differs from tensor rank \(size.count)")
            }
            chunks.append(ChunkStorageMetadata(offsets: offsets, sizes: sizes))
        }
        return .tensor(TensorStorageMetadata(properties: props, size: size, chunks: chunks))
    }

    static func properties(_ v: PickleValue, _ fqn: String) throws(FormatError) -> TensorProperties {
        guard case .object(let o) = v, case .global(md, "TensorProperties") = o.callable else {
            throw fail("'\(fqn)': properties is not a TensorProperties")
        }
        var dtypeV: PickleValue?, layoutV: PickleValue?, rg: PickleValue?, mf: PickleValue?, pin: PickleValue?, strides: PickleValue?
        switch o.state {
        case .tuple(let t)? where t.count == 5 || t.count == 6:
            dtypeV = t[0]
            layoutV = t[1]
            rg = t[2]
            mf = t[3]
            pin = t[4]
            strides = t.count == 6 ? t[5] : nil
        case .dict(let d)?:
            dtypeV = field(d, "dtype")
            layoutV = field(d, "layout")
            rg = field(d, "requires_grad")
            mf = field(d, "memory_format")
            pin = field(d, "pin_memory")
            strides = field(d, "strides")
        default:
            throw fail("'\(fqn)': TensorProperties state is not a 5/6-tuple")
        }
        guard case .global("torch", let dn)? = dtypeV, let dtype = DType(torchName: dn) else {
            throw fail("'\(fqn)': TensorProperties dtype is not a known torch dtype")
        }
        var layout = "torch.strided"
        if let layoutV, layoutV != .none {
            guard case .object(let lo) = layoutV, case .global("torch.serialization", "_get_layout") = lo.callable,
                case .tuple(let la) = lo.args, la.count == 1, case .string(let ln) = la[0]
            else {
                throw fail("'\(fqn)': layout is not _get_layout('…')")
            }
            layout = ln
        }
        var memoryFormat = 0
        if let mf, mf != .none {
            guard case .object(let mo) = mf, case .global(md, "_MEM_FORMAT_ENCODING") = mo.callable,
                case .tuple(let ma) = mo.args, ma.count == 1, let m = ma[0].intValue
            else {
                throw fail("'\(fqn)': memory_format is not _MEM_FORMAT_ENCODING(int)")
            }
            memoryFormat = m
        }
        var strideValues: [Int]?
        if let strides, strides != .none { strideValues = try ints(strides, "'\(fqn)' strides") }
        return TensorProperties(
            dtype: dtype, layout: layout, requiresGrad: rg == nil || rg == PickleValue.none ? false : try bool(rg, "requires_grad"),
            memoryFormat: memoryFormat, pinMemory: pin == nil || pin == PickleValue.none ? false : try bool(pin, "pin_memory"),
            strides: strideValues)
    }

    static func metadataIndex(_ v: PickleValue) throws(FormatError) -> MetadataIndex {
        let s = try object(v, md, "MetadataIndex")
        let fqn = try string(field(s, "fqn"), "MetadataIndex.fqn")
        var offset: [Int]?
        if let o = field(s, "offset"), o != .none { offset = try size(o, "MetadataIndex.offset") }
        var index: Int?
        if let i = field(s, "index"), i != .none { index = try int(i, "MetadataIndex.index") }
        return MetadataIndex(fqn: fqn, offset: offset, index: index)
    }

    static func storageInfo(_ v: PickleValue) throws(FormatError) -> StorageInfo {
        let s = try object(v, "torch.distributed.checkpoint.filesystem", "_StorageInfo")
        let path = try string(field(s, "relative_path"), "_StorageInfo.relative_path")
        let offset = try int(field(s, "offset"), "_StorageInfo.offset")
        let length = try int(field(s, "length"), "_StorageInfo.length")
        guard offset >= 0, length >= 0 else { throw fail("_StorageInfo offset/length negative") }
        var transforms: [String]?
        if let t = field(s, "transform_descriptors"), t != .none {
            guard let a = t.sequenceElements else { throw fail("transform_descriptors is not a list") }
            var names: [String] = []
            for x in a { names.append(try string(x, "transform descriptor")) }
            transforms = names
        }
        return StorageInfo(relativePath: path, offset: offset, length: length, transformDescriptors: transforms)
    }

    static func storageMeta(_ v: PickleValue) throws(FormatError) -> StorageMeta {
        let s = try object(v, md, "StorageMeta")
        var out = StorageMeta()
        switch field(s, "checkpoint_id") {
        case nil, .none?: out.checkpointID = nil
        case .string(let str)?: out.checkpointID = .string(str)
        case .object(let o)?:
            guard case .global("pathlib", let cls) = o.callable, case .tuple(let parts) = o.args else {
                throw fail("StorageMeta.checkpoint_id is not a pathlib path")
            }
            var comps: [String] = []
            for p in parts { comps.append(try string(p, "path component")) }
            out.checkpointID = .path(className: cls, components: comps)
        default: throw fail("StorageMeta.checkpoint_id has an unexpected type")
        }
        out.saveID = try optionalString(field(s, "save_id"), "StorageMeta.save_id")
        out.loadID = try optionalString(field(s, "load_id"), "StorageMeta.load_id")
        if let m = field(s, "modules"), m != .none {
            guard let a = m.sequenceElements else { throw fail("StorageMeta.modules is not a list") }
            for x in a { out.modules.append(try string(x, "module name")) }
        }
        return out
    }
}

enum MetadataEncoder {
    static let md = "torch.distributed.checkpoint.metadata"
    static let dtypeModule = PickleEmitter.MemoKey.token("dtype-module:torch")
    static let sizeModule = PickleEmitter.MemoKey.token("class-module:torch")

    /// The attribute names and classes every `.metadata` repeats: their memo indices are cached
    /// in emitter slots after first use (``PickleEmitter/cachedString(_:_:)``), so each repeat
    /// costs no hashing. Slots `dtypeBase + i` hold the dtype globals.
    enum Slot: Int {
        // Attribute names.
        case stateDictMetadata, plannerData, storageData, storageMeta, version, properties, size, chunks, offsets, sizes
        case fqn, index, offset, relativePath, length, transformDescriptors, checkpointID, saveID, loadID, modules
        // Classes.
        case metadata, tensorStorageMetadata, bytesStorageMetadata, tensorProperties, chunkStorageMetadata, metadataIndex
        case storageMetaClass, memFormatEncoding, storageInfo, torchSize, getLayout

        static let dtypeBase = 64

        var text: String {
            switch self {
            case .stateDictMetadata: return "state_dict_metadata"
            case .plannerData: return "planner_data"
            case .storageData: return "storage_data"
            case .storageMeta: return "storage_meta"
            case .version: return "version"
            case .properties: return "properties"
            case .size: return "size"
            case .chunks: return "chunks"
            case .offsets: return "offsets"
            case .sizes: return "sizes"
            case .fqn: return "fqn"
            case .index: return "index"
            case .offset: return "offset"
            case .relativePath: return "relative_path"
            case .length: return "length"
            case .transformDescriptors: return "transform_descriptors"
            case .checkpointID: return "checkpoint_id"
            case .saveID: return "save_id"
            case .loadID: return "load_id"
            case .modules: return "modules"
            case .metadata: return "Metadata"
            case .tensorStorageMetadata: return "TensorStorageMetadata"
            case .bytesStorageMetadata: return "BytesStorageMetadata"
            case .tensorProperties: return "TensorProperties"
            case .chunkStorageMetadata: return "ChunkStorageMetadata"
            case .metadataIndex: return "MetadataIndex"
            case .storageMetaClass: return "StorageMeta"
            case .memFormatEncoding: return "_MEM_FORMAT_ENCODING"
            case .storageInfo: return "_StorageInfo"
            case .torchSize: return "Size"
            case .getLayout: return "_get_layout"
            }
        }

        var module: String {
            switch self {
            case .storageInfo: return "torch.distributed.checkpoint.filesystem"
            case .torchSize: return "torch"
            case .getLayout: return "torch.serialization"
            default: return MetadataEncoder.md
            }
        }
    }

    /// An attribute name (shared by value, like CPython's interned identifiers).
    @inline(__always)
    static func name(_ e: inout PickleEmitter, _ slot: Slot) { e.cachedString(slot.rawValue, slot.text) }

    /// A class reference.
    @inline(__always)
    static func cls(_ e: inout PickleEmitter, _ slot: Slot) {
        e.cachedGlobal(slot.rawValue, slot.module, slot.text, moduleIdentity: slot == .torchSize ? sizeModule : nil)
    }

    /// NEWOBJ with `()` + MEMOIZE, then EMPTY_DICT + MEMOIZE + `count` items (`item(e, i)` emits
    /// the i-th name and value) + BUILD.
    static func newObj(_ e: inout PickleEmitter, _ slot: Slot, count: Int, _ item: (inout PickleEmitter, Int) -> Void) {
        cls(&e, slot)
        e.tuple(count: 0) { _ in }
        e.out.u8(0x81)
        e.memoize()
        emptyContainer(&e, 0x7D)
        e.batch(count, single: 0x73, many: 0x75, item)
        e.out.u8(0x62)
    }

    /// `save()` of a fresh dict/list: boundary, EMPTY_DICT/EMPTY_LIST, MEMOIZE.
    static func emptyContainer(_ e: inout PickleEmitter, _ op: UInt8) {
        e.boundary()
        e.out.u8(op)
        e.memoize()
    }

    static func intTuple(_ e: inout PickleEmitter, _ v: [Int]) {
        e.tuple(count: v.count) { em in for x in v { em.int(Int64(x)) } }
    }

    static func size(_ e: inout PickleEmitter, _ v: [Int]) {
        cls(&e, .torchSize)
        e.tuple(count: 1) { em in intTuple(&em, v) }
        e.out.u8(0x52)
        e.memoize()
    }

    /// Emits an fqn-like string following the sharing style.
    static func shared(_ s: String, _ style: MetadataPickleStyle, scope: String, _ e: inout PickleEmitter) {
        switch style {
        case .singleProcess: e.string(s)
        case .gathered:
            if scope.isEmpty {
                e.freshString(s)
            } else {
                e.string(s, identity: .token(scope + ":" + s))
            }
        }
    }

    /// Rank encoded in a `__{rank}_{i}.distcp` / `__{rank}.distcp` name.
    static func rank(ofPath path: String) -> Int? {
        // ASCII digits over UTF-8 bytes (Character.isNumber asks Unicode tables, per file name
        // of every storage entry: a quarter of the encoding time on a large model).
        var utf8 = path.utf8.makeIterator()
        guard utf8.next() == UInt8(ascii: "_"), utf8.next() == UInt8(ascii: "_") else { return nil }
        var value = 0
        var digits = 0
        while let byte = utf8.next(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = sum
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// fqns whose state-dict key object is the same as the planner-data key object under the
    /// gathered style: the coordinator takes `state_dict_metadata` keys from the first plan that
    /// holds the item (after de-duplication) and planner-data keys from the last rank's plan, so
    /// they coincide exactly for items written by the last rank.
    static func sharedKeys(_ m: DCPMetadata) -> Set<String> {
        var lastRank = -1
        for v in m.storageData.values { if let r = rank(ofPath: v.relativePath) { lastRank = Swift.max(lastRank, r) } }
        var out = Set<String>()
        for (fqn, entry) in zip(m.stateDictMetadata.keys, m.stateDictMetadata.values) {
            let offsets: [Int]?
            switch entry {
            case .bytes: offsets = nil
            case .tensor(let t):
                guard let first = t.chunks.first else { continue }
                offsets = first.offsets
            }
            if let info = m.storage(fqn: fqn, offsets: offsets), rank(ofPath: info.relativePath) == lastRank {
                out.insert(fqn)
            }
        }
        return out
    }

    /// Emits a state-dict or planner key.
    static func key(_ s: String, _ style: MetadataPickleStyle, shared: Set<String>, _ e: inout PickleEmitter) {
        if style == .gathered && shared.contains(s) {
            e.string(s, identity: .token("key:" + s))
        } else {
            self.shared(s, style, scope: "", &e)
        }
    }

    static func metadata(_ m: DCPMetadata, _ style: MetadataPickleStyle, _ e: inout PickleEmitter) {
        newObj(&e, .metadata, count: 5) { e, i in
            switch i {
            case 0:
                name(&e, .stateDictMetadata)
                stateDict(m, style, &e)
            case 1:
                name(&e, .plannerData)
                plannerData(m, style, &e)
            case 2:
                name(&e, .storageData)
                storageData(m, style, &e)
            case 3:
                name(&e, .storageMeta)
                storageMeta(m.storageMeta, &e)
            default:
                name(&e, .version)
                if let v = m.version { e.string(v) } else { e.none() }
            }
        }
    }

    static func stateDict(_ m: DCPMetadata, _ style: MetadataPickleStyle, _ e: inout PickleEmitter) {
        emptyContainer(&e, 0x7D)
        let keys = m.stateDictMetadata.keys, values = m.stateDictMetadata.values
        let sharedKeys = style == .gathered ? self.sharedKeys(m) : []
        e.batch(keys.count, single: 0x73, many: 0x75) { e, i in
            key(keys[i], style, shared: sharedKeys, &e)
            switch values[i] {
            case .bytes:
                cls(&e, .bytesStorageMetadata)
                e.tuple(count: 0) { _ in }
                e.out.u8(0x81)
                e.memoize()
            case .tensor(let t):
                tensor(t, &e)
            }
        }
    }

    static func tensor(_ t: TensorStorageMetadata, _ e: inout PickleEmitter) {
        newObj(&e, .tensorStorageMetadata, count: 3) { e, i in
            switch i {
            case 0:
                name(&e, .properties)
                properties(t.properties, &e)
            case 1:
                name(&e, .size)
                size(&e, t.size)
            default:
                name(&e, .chunks)
                emptyContainer(&e, 0x5D)
                e.batch(t.chunks.count, single: 0x61, many: 0x65) { e, i in
                    let c = t.chunks[i]
                    newObj(&e, .chunkStorageMetadata, count: 2) { e, j in
                        name(&e, j == 0 ? .offsets : .sizes)
                        size(&e, j == 0 ? c.offsets : c.sizes)
                    }
                }
            }
        }
    }

    static func properties(_ p: TensorProperties, _ e: inout PickleEmitter) {
        cls(&e, .tensorProperties)
        e.tuple(count: 0) { _ in }
        e.out.u8(0x81)
        e.memoize()
        e.tuple(count: 6) { e in
            let dtypeIndex = DType.allCases.firstIndex(of: p.dtype) ?? 0
            e.cachedGlobal(Slot.dtypeBase + dtypeIndex, "torch", p.dtype.torchName, moduleIdentity: dtypeModule)
            // The layout and memory-format objects are singletons shared by identity.
            let layoutKey = PickleEmitter.MemoKey.token("layout:" + p.layout)
            e.boundary()
            if !e.get(layoutKey) {
                cls(&e, .getLayout)
                e.tuple(count: 1) { e in e.string(p.layout) }
                e.out.u8(0x52)
                e.memoize(layoutKey)
            }
            e.bool(p.requiresGrad)
            let mfKey = PickleEmitter.MemoKey.token("memfmt:\(p.memoryFormat)")
            e.boundary()
            if !e.get(mfKey) {
                cls(&e, .memFormatEncoding)
                e.tuple(count: 1) { e in e.int(Int64(p.memoryFormat)) }
                e.out.u8(0x52)
                e.memoize(mfKey)
            }
            e.bool(p.pinMemory)
            if let s = p.strides { intTuple(&e, s) } else { e.none() }
        }
        e.out.u8(0x62)
    }

    static func plannerData(_ m: DCPMetadata, _ style: MetadataPickleStyle, _ e: inout PickleEmitter) {
        guard let pd = m.plannerData else {
            e.none()
            return
        }
        emptyContainer(&e, 0x7D)
        let keys = pd.keys, values = pd.values
        let sharedKeys = style == .gathered ? self.sharedKeys(m) : []
        e.batch(keys.count, single: 0x73, many: 0x75) { e, i in
            key(keys[i], style, shared: sharedKeys, &e)
            let path = values[i]
            e.tuple(count: path.count) { e in
                for p in path {
                    switch p {
                    case .key(let s): shared(s, style, scope: "planner", &e)
                    case .index(let n): e.int(Int64(n))
                    }
                }
            }
        }
    }

    static func storageData(_ m: DCPMetadata, _ style: MetadataPickleStyle, _ e: inout PickleEmitter) {
        emptyContainer(&e, 0x7D)
        let keys = m.storageData.keys, values = m.storageData.values
        e.batch(keys.count, single: 0x73, many: 0x75) { e, i in
            let k = keys[i], v = values[i]
            newObj(&e, .metadataIndex, count: k.offset == nil ? 2 : 3) { e, j in
                switch j {
                case 0:
                    name(&e, .fqn)
                    shared(k.fqn, style, scope: "", &e)
                case 1:
                    name(&e, .index)
                    if let x = k.index { e.int(Int64(x)) } else { e.none() }
                default:
                    name(&e, .offset)
                    size(&e, k.offset ?? [])
                }
            }
            newObj(&e, .storageInfo, count: v.transformDescriptors == nil ? 3 : 4) { e, j in
                switch j {
                case 0:
                    name(&e, .relativePath)
                    shared(v.relativePath, style, scope: "path", &e)
                case 1:
                    name(&e, .offset)
                    e.int(Int64(v.offset))
                case 2:
                    name(&e, .length)
                    e.int(Int64(v.length))
                default:
                    name(&e, .transformDescriptors)
                    let t = v.transformDescriptors ?? []
                    emptyContainer(&e, 0x5D)
                    e.batch(t.count, single: 0x61, many: 0x65) { e, j in e.string(t[j]) }
                }
            }
        }
    }

    static func storageMeta(_ s: StorageMeta?, _ e: inout PickleEmitter) {
        guard let s else {
            e.none()
            return
        }
        newObj(&e, .storageMetaClass, count: 4) { e, i in
            switch i {
            case 0:
                name(&e, .checkpointID)
                switch s.checkpointID {
                case nil: e.none()
                case .string(let str)?: e.string(str)
                case .path(let cls, let comps)?:
                    e.global("pathlib", cls)
                    e.tuple(count: comps.count) { e in for c in comps { e.string(c) } }
                    e.out.u8(0x52)
                    e.memoize()
                }
            case 1:
                name(&e, .saveID)
                if let x = s.saveID { e.string(x) } else { e.none() }
            case 2:
                name(&e, .loadID)
                if let x = s.loadID { e.string(x) } else { e.none() }
            default:
                name(&e, .modules)
                emptyContainer(&e, 0x5D)
                e.batch(s.modules.count, single: 0x61, many: 0x65) { e, j in e.string(s.modules[j]) }
            }
        }
    }
}

/// How `.metadata` strings are shared through the pickle memo (affects bytes only, not meaning).
public enum MetadataPickleStyle: Sendable {
    /// Coordinator-gathered plans (the usual multi-rank save): fqn strings are not shared.
    case gathered
    /// A single process without a process group: equal strings are shared.
    case singleProcess
}
