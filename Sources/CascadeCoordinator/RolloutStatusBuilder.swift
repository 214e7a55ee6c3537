import CascadeAPI
import CascadeStore

/// Builds the operator's view of a rollout from the store: totals, per-cluster progress and,
/// on request, one row per agent.
struct RolloutStatusBuilder {
    let store: CoordinatorStore
    let connected: Set<String>
    /// Cluster prefix → its byte counters in the rollout (services.md §3.4).
    let bytes: [String: (fromCoordinator: UInt64, served: UInt64)]

    func status(_ rollout: RolloutRecord, includeAgents: Bool) throws(StoreError) -> RolloutStatus {
        let rows = try store.rolloutAgents(rolloutID: rollout.id)
        var clusters: [ClusterProgress] = []
        for cluster in try store.rolloutClusters(rolloutID: rollout.id) {
            let record = try store.cluster(id: cluster.clusterID)
            let mine = rows.filter { $0.clusterID == cluster.clusterID }
            let leaderID = record?.leaderID ?? ""
            let membersDone = mine.filter { $0.agentID != leaderID }.allSatisfy(\.state.isTerminal)
            clusters.append(ClusterProgress(
                clusterID: cluster.prefix, phase: ClusterPhase(cluster.state, leaderTurn: membersDone),
                leaderID: leaderID, leaderEpoch: UInt64(record?.leaderEpoch ?? 0), counts: Self.counts(mine),
                bytesFromCoordinator: bytes[cluster.prefix]?.fromCoordinator ?? 0, bytesServed: bytes[cluster.prefix]?.served ?? 0,
                wave: UInt32(cluster.waveNumber),
                message: cluster.reason ?? ""))
        }
        var agents: [AgentRow] = []
        if includeAgents {
            for row in rows {
                let agent = try store.agent(id: row.agentID)
                agents.append(AgentRow(
                    agentID: row.agentID, clusterID: agent?.clusterPrefix ?? "",
                    role: agent.map { CascadeAPI.AgentRole($0.role) } ?? .unspecified,
                    progress: AgentProgress(
                        rolloutID: UInt64(rollout.id), state: AgentRolloutState(row.state), releaseVersion: rollout.releaseVersion,
                        bytesDone: UInt64(max(0, row.bytes)), error: row.error ?? ""),
                    updatedAtMs: row.enteredAt.unixMilliseconds))
            }
        }
        return RolloutStatus(
            rolloutID: UInt64(rollout.id), releaseVersion: rollout.releaseVersion, state: CascadeAPI.RolloutState(rollout.state),
            policy: CascadeAPI.RolloutPolicy(rollout.policy), clusters: rollout.policy.clusters,
            createdAtMs: rollout.createdAt.unixMilliseconds, startedAtMs: rollout.startedAt?.unixMilliseconds ?? 0,
            finishedAtMs: rollout.finishedAt?.unixMilliseconds ?? 0, updatedAtMs: rollout.updatedAt.unixMilliseconds,
            // The operator's id alone, as `ReleaseInfo.pushed_by` (services.md §6).
            createdBy: rollout.createdBy.id, message: rollout.stateReason ?? "", totals: Self.counts(rows),
            clusterProgress: clusters, agents: agents, fromVersion: rollout.fromVersion)
    }

    static func counts(_ rows: [RolloutAgentRecord]) -> StateCounts {
        var counts = StateCounts()
        for row in rows {
            switch row.state {
            case .pending: counts.pending += 1
            case .instructed: counts.instructed += 1
            case .downloading: counts.downloading += 1
            case .installing: counts.installing += 1
            case .healthy: counts.healthy += 1
            case .failed: counts.failed += 1
            case .rolledBack: counts.rolledBack += 1
            }
        }
        return counts
    }
}
