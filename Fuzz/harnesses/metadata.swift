// libFuzzer entry point: DCPMetadata(decoding:) over arbitrary bytes. Its fast path (the model read
// straight from the pickle graph) must agree with the reference path (the PickleValue tree, then
// init(pickle:)): both fail, or both give the same model. What decodes must survive an
// encode/decode round trip unchanged.
import CkptFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMetadata(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    let fast = try? DCPMetadata(decoding: bytes)
    let reference = try? DCPMetadata(pickle: PickleReader().decode(bytes).value)
    precondition((fast == nil) == (reference == nil), "fast path and tree path disagree on success: fast \(fast != nil), tree \(reference != nil)")
    guard let metadata = fast else { return 0 }
    precondition(metadata == reference, "fast path and tree path decode different models")
    let again: DCPMetadata
    do {
        again = try DCPMetadata(decoding: metadata.encoded())
    } catch {
        preconditionFailure("re-encoded metadata does not decode: \(error)")
    }
    precondition(again == metadata, "metadata changed in an encode/decode round trip")
    return 0
}
