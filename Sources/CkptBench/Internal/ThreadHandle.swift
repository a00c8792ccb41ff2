#if canImport(Glibc)
import Glibc
#endif

/// A joinable pthread running a ``SamplerContext``.
struct ThreadHandle: Sendable {
    // pthread_t is a plain integer handle on Linux; it is only joined once, by `stop()`.
    private let thread: pthread_t

    static func spawn(_ context: SamplerContext) throws(MemorySamplerError) -> ThreadHandle {
        let retained = Unmanaged.passRetained(context).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { raw in
                guard let raw else { return nil }
                let context = Unmanaged<SamplerContext>.fromOpaque(raw).takeRetainedValue()
                context.run()
                return nil
            }, retained)
        guard result == 0 else {
            Unmanaged<SamplerContext>.fromOpaque(retained).release()
            throw .threadCreationFailed(errno: result)
        }
        return ThreadHandle(thread: thread)
    }

    func join() {
        _ = pthread_join(thread, nil)
    }
}
