import Ckpt
import Glibc

/// Wraps a rank's communicator to make the save's phases visible to a parent process: the save
/// is a fixed sequence of collectives (gather local plans, broadcast the global plan, gather the
/// write results, broadcast the outcome), so each collective call marks a phase boundary.
///
/// Rank 0 prints `PHASE <name>` lines (stdout, unbuffered) and, when asked, sleeps after them:
/// - `planned`: the global plan is known and the directory exists; no data written yet.
/// - `written <rank>` (every rank): this rank's data files are written and fsynced.
/// - `data-fsynced`: every rank's data files are fsynced; rank 0 is about to write the sidecar,
///   `.metadata.tmp`, rename it and fsync the directory.
/// - `committed`: `.metadata` is renamed into place and the directory fsynced.
/// `hold` makes the process stop for good (until killed) at one named phase; `holdRank` makes one
/// rank (not 0) stop right after `planned`, so other ranks' files are complete while its are not.
struct PhaseCommunicator: Communicator {
    let inner: any Communicator
    let pauseMicroseconds: UInt32
    let hold: String?
    let holdRank: Int?
    let calls = Counter()

    final class Counter: @unchecked Sendable {
        // Safety: each PhaseCommunicator (and so each Counter) is used by one rank's task only,
        // and that task calls collectives one at a time.
        var value = 0
    }

    var rank: Int { inner.rank }
    var worldSize: Int { inner.worldSize }

    func mark(_ phase: String) async throws {
        let line = "PHASE \(phase)\n"
        _ = line.withCString { write(1, $0, strlen($0)) }
        if hold.map({ phase.hasPrefix($0) }) == true {
            while true { try await Task.sleep(for: .seconds(60)) }
        }
        if pauseMicroseconds > 0 { try await Task.sleep(for: .microseconds(pauseMicroseconds)) }
    }

    func gather(_ payload: [UInt8], root: Int) async throws -> [[UInt8]]? {
        calls.value += 1
        let call = calls.value
        if call == 3 { try await mark("written \(rank)") }
        let result = try await inner.gather(payload, root: root)
        if call == 3, rank == 0 { try await mark("data-fsynced") }
        return result
    }

    func broadcast(_ payload: [UInt8]?, root: Int) async throws -> [UInt8] {
        calls.value += 1
        let call = calls.value
        if call == 4, rank == 0 { try await mark("committed") }
        let result = try await inner.broadcast(payload, root: root)
        if call == 2 {
            if rank == 0 { try await mark("planned") }
            if let holdRank, holdRank == rank {
                while true { try await Task.sleep(for: .seconds(60)) }
            }
        }
        return result
    }

    func barrier() async throws { try await inner.barrier() }
}
