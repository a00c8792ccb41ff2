import Glibc

/// Page-aligned memory for I/O: 4096-aligned, and from 2 MiB up 2 MiB-aligned and advised for
/// transparent huge pages (fewer page faults; O_DIRECT transfers pin whole huge pages and reach
/// the device in large segments, where 4 KiB pages cap a request at `max_segments` pages, e.g.
/// 1016 KiB on virtio-blk). Used by the buffer pool and by tensor buffers.
public enum AlignedMemory {
    /// Alignment of every allocation.
    public static let alignment = 4096
    /// Size of a transparent huge page on x86-64 and most arm64 kernels.
    public static let hugePageSize = 2 << 20

    /// Allocates `byteCount` uninitialized bytes (at least one); nil when memory is exhausted.
    /// Release with ``deallocate(_:)``.
    public static func allocate(byteCount: Int) -> UnsafeMutableRawPointer? {
        let huge = byteCount >= hugePageSize
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, huge ? hugePageSize : alignment, max(byteCount, 1)) == 0, let pointer else {
            return nil
        }
        if huge { _ = madvise(pointer, byteCount, MADV_HUGEPAGE) }
        return pointer
    }

    /// Releases memory from ``allocate(byteCount:)``.
    public static func deallocate(_ pointer: UnsafeMutableRawPointer) {
        free(pointer)
    }
}
