// libFuzzer entry point: ByteIORecord.decode (a torch.save'd non-tensor value) over arbitrary bytes.
import CkptFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzByteIO(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    _ = try? ByteIORecord.decode(bytes)
    return 0
}
