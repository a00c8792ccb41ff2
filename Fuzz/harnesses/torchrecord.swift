// libFuzzer entry point: TorchTensorRecord.read (whole record) and TorchTensorRecord.locate
// (growing head, as the loader calls it) over arbitrary bytes.
import CkptFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTorchRecord(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    if let record = try? TorchTensorRecord.read(bytes) {
        precondition(record.storageRange.lowerBound >= 0 && record.storageRange.upperBound <= size, "storage \(record.storageRange) outside 0..<\(size)")
    }
    // The loader's loop: a 4096-byte head, grown on request, at most 8 rounds.
    var head = min(size, 4096)
    for _ in 0..<8 {
        guard let location = try? TorchTensorRecord.locate(
            head: UnsafeRawBufferPointer(rebasing: bytes[..<head]), recordLength: size)
        else { break }
        switch location {
        case .located:
            return 0
        case .needMoreHead(let want):
            precondition(want > head && want <= size, "needMoreHead(\(want)) with head \(head) of record \(size)")
            head = want
        }
    }
    return 0
}
