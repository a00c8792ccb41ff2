import Synchronization

/// N ranks as N concurrent tasks of one process: the communicator used by tests and the benchmark.
///
/// ```swift
/// let group = InProcessGroup(worldSize: 4)
/// try await withThrowingTaskGroup(of: Void.self) { tasks in
///     for rank in 0..<4 { tasks.addTask { try await train(group.communicator(rank: rank)) } }
///     try await tasks.waitForAll()
/// }
/// ```
/// Payloads are copied between ranks exactly as a network transport would, so code that works here
/// does not rely on shared memory. ``abort(_:)`` fails every pending and future collective, so a
/// rank that dies cannot leave the others waiting forever.
public final class InProcessGroup: Sendable {
    public let worldSize: Int
    private let state: Mutex<State>

    private struct Slot {
        var payloads: [[UInt8]?]
        var waiters: [(rank: Int, continuation: CheckedContinuation<[[UInt8]?], any Error>)] = []
        var arrived = 0
    }

    private struct State {
        /// Collective sequence number -> rendezvous slot.
        var slots: [UInt64: Slot] = [:]
        /// Next sequence number each rank will use.
        var nextSequence: [UInt64]
        var abortError: CheckpointError?
    }

    public init(worldSize: Int) {
        precondition(worldSize > 0, "worldSize must be positive")
        self.worldSize = worldSize
        self.state = Mutex(State(nextSequence: Array(repeating: 0, count: worldSize)))
    }

    /// The communicator of one rank of this group.
    public func communicator(rank: Int) -> any Communicator {
        precondition(rank >= 0 && rank < worldSize, "rank \(rank) out of 0..<\(worldSize)")
        return InProcessCommunicator(group: self, rank: rank)
    }

    /// Fails every pending and future collective of the group with `error`.
    public func abort(_ error: CheckpointError) {
        let waiters = state.withLock { state -> [CheckedContinuation<[[UInt8]?], any Error>] in
            if state.abortError == nil { state.abortError = error }
            let all = state.slots.values.flatMap { $0.waiters.map(\.continuation) }
            state.slots.removeAll()
            return all
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }

    /// Deposits `payload` for this rank in its next collective and waits until all ranks have
    /// deposited; returns every payload in rank order.
    fileprivate func exchange(rank: Int, payload: [UInt8]?) async throws -> [[UInt8]?] {
        typealias Waiter = CheckedContinuation<[[UInt8]?], any Error>
        enum Outcome {
            case wait
            case failed(CheckpointError)
            case complete([Waiter], [[UInt8]?])
        }
        return try await withCheckedThrowingContinuation { (continuation: Waiter) in
            let outcome = state.withLock { state -> Outcome in
                if let error = state.abortError { return .failed(error) }
                let sequence = state.nextSequence[rank]
                state.nextSequence[rank] += 1
                var slot = state.slots[sequence] ?? Slot(payloads: Array(repeating: nil, count: worldSize))
                slot.payloads[rank] = payload
                slot.arrived += 1
                slot.waiters.append((rank, continuation))
                if slot.arrived == worldSize {
                    state.slots[sequence] = nil
                    return .complete(slot.waiters.map(\.continuation), slot.payloads)
                }
                state.slots[sequence] = slot
                return .wait
            }
            switch outcome {
            case .wait:
                break
            case .failed(let error):
                continuation.resume(throwing: error)
            case .complete(let waiters, let payloads):
                for waiter in waiters { waiter.resume(returning: payloads) }
            }
        }
    }
}

private struct InProcessCommunicator: Communicator {
    let group: InProcessGroup
    let rank: Int
    var worldSize: Int { group.worldSize }

    func gather(_ payload: [UInt8], root: Int) async throws -> [[UInt8]]? {
        let all = try await group.exchange(rank: rank, payload: payload)
        guard rank == root else { return nil }
        return all.map { $0 ?? [] }
    }

    func broadcast(_ payload: [UInt8]?, root: Int) async throws -> [UInt8] {
        let all = try await group.exchange(rank: rank, payload: rank == root ? (payload ?? []) : nil)
        return all[root] ?? []
    }

    func barrier() async throws {
        _ = try await group.exchange(rank: rank, payload: nil)
    }
}
