import CkptIO

/// Memory holding tensor bytes: allocated by ckpt (4096-byte aligned, so the I/O engine can write
/// and read it with O_DIRECT without staging) or lent by the caller.
///
/// A save reads the memory; a load writes it. The caller must not modify the memory while a save
/// that uses it runs (for ``Checkpointer/saveAsync(_:to:)``, only until the call returns, since
/// the state is staged), nor touch it while a load fills it: the same contract as MPI buffers.
public final class TensorBuffer: @unchecked Sendable {
    // Safety: the class has no mutable stored state; `bytes` is fixed for its lifetime. Access to
    // the memory it points to is governed by the contract above (exclusive during save/load).

    /// The memory.
    public let bytes: UnsafeMutableRawBufferPointer
    private let owned: Bool

    /// Alignment of buffers allocated by ckpt.
    public static let alignment = AlignedMemory.alignment

    /// Allocates `byteCount` zero-filled bytes aligned to 4096.
    public convenience init(byteCount: Int) {
        self.init(uninitializedByteCount: byteCount)
        if byteCount > 0, let base = bytes.baseAddress { base.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount) }
    }

    /// Allocates `byteCount` bytes aligned to 4096 without initializing them (every byte is
    /// expected to be overwritten, e.g. by a load). From 2 MiB up the memory is in transparent
    /// huge pages (``AlignedMemory``).
    public init(uninitializedByteCount byteCount: Int) {
        precondition(byteCount >= 0, "byteCount must not be negative")
        guard let raw = AlignedMemory.allocate(byteCount: byteCount) else {
            fatalError("out of memory allocating a \(byteCount)-byte tensor buffer")
        }
        bytes = UnsafeMutableRawBufferPointer(start: raw, count: byteCount)
        owned = true
    }

    /// Wraps memory the caller owns and keeps alive for as long as this buffer is used.
    public init(borrowing memory: UnsafeMutableRawBufferPointer) {
        bytes = memory
        owned = false
    }

    /// Number of bytes.
    public var count: Int { bytes.count }

    /// Whether the start address is 4096-aligned (O_DIRECT transfers need no staging).
    public var isAligned: Bool {
        guard let base = bytes.baseAddress else { return true }
        return Int(bitPattern: base) % Self.alignment == 0
    }

    deinit {
        if owned, let base = bytes.baseAddress { AlignedMemory.deallocate(base) }
    }
}
