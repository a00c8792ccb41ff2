// libFuzzer entry point: DCPMetadata(decoding:) over arbitrary bytes; what decodes must survive
// an encode/decode round trip unchanged.
import CkptFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMetadata(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    guard let metadata = try? DCPMetadata(decoding: bytes) else { return 0 }
    let again: DCPMetadata
    do {
        again = try DCPMetadata(decoding: metadata.encoded())
    } catch {
        preconditionFailure("re-encoded metadata does not decode: \(error)")
    }
    precondition(again == metadata, "metadata changed in an encode/decode round trip")
    return 0
}
