// libFuzzer entry point: TorchSaveFile (a whole torch.save zip: data.pkl, storages) over arbitrary bytes.
import CkptFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTorchSave(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    if let file = try? TorchSaveFile(parsing: bytes) {
        for storage in file.storages {
            precondition(storage.byteRange.lowerBound >= 0 && storage.byteRange.upperBound <= size, "storage \(storage.key) \(storage.byteRange) outside 0..<\(size)")
        }
    }
    return 0
}
