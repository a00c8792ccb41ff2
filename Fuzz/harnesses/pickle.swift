// libFuzzer entry point: PickleReader over arbitrary bytes (built by scripts/fuzz).
import CkptFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPickle(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    if let decoded = try? PickleReader().decode(bytes) {
        // The reported end lies inside the input.
        precondition(decoded.endOffset >= 0 && decoded.endOffset <= size, "endOffset \(decoded.endOffset) outside 0...\(size)")
    }
    return 0
}
