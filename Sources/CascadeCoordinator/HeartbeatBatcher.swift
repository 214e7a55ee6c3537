import CascadeLog
import CascadeAPI
import CascadeStore
import Synchronization

/// Heartbeats wait here (the latest per agent) until the next flush writes them all in one
/// transaction; leaders whose member list grew wait here for one assignment update. At most one
/// entry per agent, so a fleet reporting faster than the disk syncs cannot grow a backlog.
final class HeartbeatBatcher: Sendable {
    private struct Pending {
        var heartbeats: [String: CascadeStore.Heartbeat] = [:]
        var leaders: Set<String> = []
    }

    private let pending = Mutex(Pending())

    func add(_ heartbeat: CascadeStore.Heartbeat) {
        pending.withLock { $0.heartbeats[heartbeat.agentID] = heartbeat }
    }

    func refreshLeader(_ id: String) {
        _ = pending.withLock { $0.leaders.insert(id) }
    }

    func take() -> (heartbeats: [CascadeStore.Heartbeat], leaders: Set<String>) {
        pending.withLock { pending in
            defer { pending = Pending() }
            return (Array(pending.heartbeats.values), pending.leaders)
        }
    }
}

extension Coordinator {
    /// Writes what the batcher holds: heartbeats in one transaction, then the leader updates.
    func flushBatches() async {
        let (heartbeats, leaders) = batcher.take()
        if !heartbeats.isEmpty {
            do {
                let result = try await store.run { store throws(StoreError) in
                    try store.recordHeartbeats(heartbeats, actor: .coordinator("heartbeats"))
                }
                for change in result.leaderChanges { await announce(change) }
            } catch {
                Logs.agents.error("\(heartbeats.count) heartbeats not recorded: \(error.message)")
            }
        }
        for leader in leaders {
            if let view = try? await assignmentView(leader), view.role == .leader {
                hub.send(Instruction(leaderEpoch: view.leaderEpoch, assignment: view), to: leader)
            }
        }
    }
}
