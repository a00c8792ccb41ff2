// libFuzzer entry point: SafetensorsHeader.headerBytesNeeded/parse and DCPSafetensorsBlob over
// arbitrary bytes.
import CkptFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    if let need = try? SafetensorsHeader.headerBytesNeeded(prefix: bytes) {
        precondition(need >= 8, "headerBytesNeeded \(need) < 8")
    }
    if let header = try? SafetensorsHeader.parse(bytes, dataLength: max(0, size - 8)) {
        for entry in header.entries {
            precondition(entry.dataRange.lowerBound >= 0 && entry.dataRange.lowerBound <= entry.dataRange.upperBound, "entry \(entry.name) range \(entry.dataRange)")
        }
    }
    _ = try? SafetensorsHeader.parse(bytes)
    if let blob = try? DCPSafetensorsBlob(parsing: bytes) {
        for entry in blob.header.entries {
            _ = try? blob.chunk(fqn: entry.name)
        }
    }
    return 0
}
