/// BYTE_IO items of DCP (spec §4): a non-tensor value stored as a complete torch.save archive.
public enum ByteIORecord {
    /// Encodes `value` (no tensors) as torch.save does for `torch.save(value, BytesIO)`.
    public static func encode(
        _ value: TorchValue, archiveName: String = "archive", alignment: Int = 64, serializationID: String? = nil
    ) throws(FormatError) -> [UInt8] {
        guard value.tensors().isEmpty else {
            throw FormatError(.invalidValue, "BYTE_IO value contains tensors; use TorchSaveWriter", offset: 0)
        }
        return try TorchSaveWriter.encode(value, payloads: [], archiveName: archiveName, alignment: alignment, serializationID: serializationID)
    }

    /// Decodes a BYTE_IO record with the safe reader (never executes the pickle).
    public static func decode(_ record: UnsafeRawBufferPointer, reader: PickleReader = PickleReader()) throws(FormatError) -> TorchValue {
        try TorchSaveFile(parsing: record, reader: reader).value
    }

    /// Decodes a BYTE_IO record held in an array.
    public static func decode(_ record: [UInt8], reader: PickleReader = PickleReader()) throws(FormatError) -> TorchValue {
        try TorchSaveFile(parsing: record, reader: reader).value
    }
}
