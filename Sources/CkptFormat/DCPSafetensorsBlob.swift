/// The safetensors blob of DCP's `SerializationFormat.SAFETENSORS` writer (spec §5): one blob per
/// data file holding that file's tensor chunks keyed by fqn, with `DCP_SHARDING_INFO` giving each
/// chunk's global offsets. `_StorageInfo.offset` is the blob start for every chunk of the file.
public struct DCPSafetensorsBlob: Sendable, Equatable {
    /// The parsed header.
    public var header: SafetensorsHeader
    /// fqn → saved chunk offsets from `DCP_SHARDING_INFO`.
    public var savedOffsets: OrderedMap<String, [Int]>

    /// Parses a blob starting at offset 0 of `blob` (which holds at least the header).
    public init(parsing blob: UnsafeRawBufferPointer, dataLength: Int? = nil) throws(FormatError) {
        let header = try SafetensorsHeader.parse(blob, dataLength: dataLength)
        var offsets = OrderedMap<String, [Int]>()
        if let text = header.metadata?["DCP_SHARDING_INFO"] {
            guard case .object(let m) = try JSONParser.parse(text) else {
                throw FormatError(.invalidSafetensors, "DCP_SHARDING_INFO is not a JSON object", offset: 8)
            }
            for (fqn, v) in m {
                guard case .object(let f) = v, let so = f.first(where: { $0.0 == "saved_offsets" })?.1, case .array(let a) = so else {
                    throw FormatError(.invalidSafetensors, "DCP_SHARDING_INFO['\(fqn)'] lacks saved_offsets", offset: 8)
                }
                var ints: [Int] = []
                for x in a {
                    guard case .int(let i) = x, i >= 0, let ii = Int(exactly: i) else {
                        throw FormatError(.invalidSafetensors, "DCP_SHARDING_INFO['\(fqn)'] offsets must be natural numbers", offset: 8)
                    }
                    ints.append(ii)
                }
                offsets[fqn] = ints
            }
        }
        self.header = header
        self.savedOffsets = offsets
    }

    /// Parses a blob held in an array.
    public init(parsing blob: [UInt8], dataLength: Int? = nil) throws(FormatError) {
        var result: Result<DCPSafetensorsBlob, FormatError> = .failure(FormatError(.invalidSafetensors, "unreachable", offset: 0))
        blob.withUnsafeBytes { raw in
            do throws(FormatError) { result = .success(try DCPSafetensorsBlob(parsing: raw, dataLength: dataLength)) } catch { result = .failure(error) }
        }
        self = try result.get()
    }

    /// The chunk of `fqn` stored in this blob: its entry (data range relative to the data section;
    /// add ``SafetensorsHeader/dataOffset`` for the blob offset). When `offsets` is given it must
    /// equal the recorded saved offsets (missing sharding info is treated as all zeros).
    public func chunk(fqn: String, offsets: [Int]? = nil) throws(FormatError) -> SafetensorsEntry {
        guard let e = header.entry(named: fqn) else {
            throw FormatError(.invalidSafetensors, "no tensor '\(fqn)' in the safetensors blob", offset: 8)
        }
        if let offsets {
            let saved = savedOffsets[fqn] ?? [Int](repeating: 0, count: e.shape.count)
            guard saved == offsets else {
                throw FormatError(.invalidSafetensors, "'\(fqn)' saved offsets \(saved) differ from the requested chunk \(offsets)", offset: 8)
            }
        }
        return e
    }
}
