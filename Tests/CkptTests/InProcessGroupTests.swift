import Testing
@testable import Ckpt

@Suite struct InProcessGroupTests {
    @Test(arguments: [1, 2, 3, 8])
    func collectivesDeliverEveryPayloadInRankOrder(world: Int) async throws {
        let group = InProcessGroup(worldSize: world)
        let results = try await withThrowingTaskGroup(of: (Int, [[UInt8]]?, [UInt8], [[UInt8]]).self) { tasks in
            for rank in 0..<world {
                tasks.addTask {
                    let comm = group.communicator(rank: rank)
                    // Ranks arrive in scrambled order.
                    try await Task.sleep(for: .milliseconds((world - rank) % 3))
                    let gathered = try await comm.gather([UInt8(rank), 7], root: world - 1)
                    let root = try await comm.broadcast(rank == 0 ? [42, 43] : nil, root: 0)
                    try await comm.barrier()
                    let all = try await comm.allGather(Array(repeating: UInt8(rank), count: rank))
                    return (rank, gathered, root, all)
                }
            }
            var out: [(Int, [[UInt8]]?, [UInt8], [[UInt8]])] = []
            for try await r in tasks { out.append(r) }
            return out.sorted { $0.0 < $1.0 }
        }
        for (rank, gathered, root, all) in results {
            if rank == world - 1 {
                #expect(gathered == (0..<world).map { [UInt8($0), 7] })
            } else {
                #expect(gathered == nil)
            }
            #expect(root == [42, 43])
            #expect(all == (0..<world).map { Array(repeating: UInt8($0), count: $0) })
        }
    }

    @Test func abortFailsPendingAndFutureCollectives() async throws {
        let group = InProcessGroup(worldSize: 2)
        let waiting = Task { try await group.communicator(rank: 0).barrier() }
        try await Task.sleep(for: .milliseconds(20))
        group.abort(CheckpointError(.aborted, "rank 1 failed"))
        await #expect(throws: CheckpointError.self) { try await waiting.value }
        await #expect(throws: CheckpointError.self) { try await group.communicator(rank: 1).barrier() }
    }

    @Test func framedBytesRejectsTruncation() throws {
        let packed = FramedBytes.pack([[1, 2, 3], [], [9]])
        #expect(try FramedBytes.unpack(packed) == [[1, 2, 3], [], [9]])
        for cut in 0..<packed.count {
            #expect(throws: CheckpointError.self) { try FramedBytes.unpack(Array(packed[..<cut])) }
        }
    }
}
