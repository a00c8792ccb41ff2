// libFuzzer entry point: ZipArchive (central directory, entries, CRC) over arbitrary bytes.
import CkptFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzZip(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    guard let archive = try? ZipArchive(parsing: bytes) else { return 0 }
    for entry in archive.entries {
        // Every entry the parser accepted lies inside the buffer.
        precondition(
            entry.payloadOffset >= 0 && entry.size >= 0 && entry.size <= size - entry.payloadOffset,
            "entry \(entry.name) payload at \(entry.payloadOffset) of \(entry.size) bytes outside 0..<\(size)")
        _ = try? ZipArchive.verifyCRC(entry, in: bytes)
        _ = archive.entry(named: entry.name)
    }
    return 0
}
