import CCkptHash
import Dispatch

/// Runs checksum work off Swift's cooperative thread pool, so that hashing large payloads never
/// delays the continuations that keep I/O in flight (on a 2-core machine the cooperative pool has
/// 2 threads: hashing there stalls every rank's writes).
final class HashExecutor: TaskExecutor {
    static let shared = HashExecutor()
    private let queue = DispatchQueue(label: "ckpt.hash", qos: .userInitiated, attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { unowned.runSynchronously(on: executor) }
    }
}

extension PayloadHashes {
    /// Hashes `count` bytes of `buffer` at `offset` on the hash executor.
    static func compute(_ buffer: TensorBuffer, offset: Int, count: Int, crc: Bool, xxh3: Bool) async -> PayloadHashes {
        guard count > 0, crc || xxh3 else { return PayloadHashes() }
        return await withTaskExecutorPreference(HashExecutor.shared) {
            PayloadHashes.compute(UnsafeRawBufferPointer(rebasing: buffer.bytes[offset..<(offset + count)]), crc: crc, xxh3: xxh3)
        }
    }
}
