import CascadeLog
import CascadeAPI
import CascadeStore
import Synchronization

/// What the engine remembers between steps: which instructions it sent, so it re-sends them
/// only when they may have been lost. Losing this (a restart) only causes re-sends; the
/// database alone decides what happens.
struct EngineMemory: Sendable {
    /// (rollout, cluster) → the leader and epoch that got the cluster order, and when.
    var orders: [ClusterKey: (leader: String, epoch: Int64, at: Timestamp, failureLimit: UInt32)] = [:]
    /// (rollout, cluster) → the member cued to send the second instruction, and when.
    var cues: [ClusterKey: (member: String, at: Timestamp)] = [:]
    /// Rollouts whose pause was announced to their leaders.
    var pauseAnnounced: Set<Int64> = []
}

struct ClusterKey: Hashable, Sendable {
    let rollout: Int64
    let cluster: Int64
}

/// The engine's state between steps.
final class RolloutEngine: Sendable {
    let memory = Mutex(EngineMemory())
}

/// What one engine step decided: instructions to send and leader changes to announce.
struct StepOutcome: Sendable {
    var sends: [(agentID: String, instruction: Instruction)] = []
    var leaderChanges: [LeaderChange] = []
    var memory: EngineMemory
}

extension Coordinator {
    /// One pass over every active rollout. The decisions run on the store's queue against the
    /// database; the instructions go out afterwards.
    func step() async {
        let connected = hub.connected
        let memory = engine.memory.withLock { $0 }
        let resend = configuration.resendInterval
        let stall = configuration.stallTimeout
        let manifests = self.manifests
        do {
            let outcome = try await store.run { store throws(StoreError) -> StepOutcome in
                var stepper = RolloutStepper(
                    store: store, connected: connected, manifests: manifests,
                    outcome: StepOutcome(memory: memory), now: Timestamp.now(), resend: resend, stall: stall)
                try stepper.run()
                return stepper.outcome
            }
            engine.memory.withLock { $0 = outcome.memory }
            for send in outcome.sends { hub.send(send.instruction, to: send.agentID) }
            for change in outcome.leaderChanges { await announce(change) }
        } catch {
            Logs.rollouts.error("rollout engine step failed: \(error.message)")
        }
    }
}

/// The rollout engine's decisions for one step (DESIGN.md §1 steps 3–7), made synchronously
/// against the store. Level-triggered: each step looks at the rows as they are and does what
/// is missing, so a restarted coordinator simply continues.
struct RolloutStepper {
    let store: CoordinatorStore
    let connected: Set<String>
    let manifests: ManifestCache
    var outcome: StepOutcome
    let now: Timestamp
    let resend: Duration
    /// A running cluster with nothing in flight and no change for this long is stalled.
    let stall: Duration
    let actor = EventActor.coordinator()

    mutating func run() throws(StoreError) {
        // Leaders whose heartbeats stopped without their session ending are replaced here.
        outcome.leaderChanges += try store.reconcileLeaders()
        let expired = try store.failExpiredRolloutAgents()
        for row in expired { Logs.rollouts.warning("agent \(row.agentID) timed out in rollout \(row.rolloutID): \(row.error ?? "")", ["rollout": "\(row.rolloutID)", "agent": row.agentID]) }
        for rollout in try store.activeRollouts() {
            try advance(rollout)
        }
    }

    private mutating func advance(_ initial: RolloutRecord) throws(StoreError) {
        var rollout = initial
        if rollout.state == .requested {
            rollout = try store.transitionRollout(id: rollout.id, to: .running, reason: "started: the first wave's clusters are instructed", actor: actor)
        }
        let clusters = try store.rolloutClusters(rolloutID: rollout.id)
        if rollout.state == .paused {
            if !outcome.memory.pauseAnnounced.contains(rollout.id) {
                control(rollout, .pause, "paused by an operator", clusters: clusters)
                outcome.memory.pauseAnnounced.insert(rollout.id)
            }
            return
        }
        if outcome.memory.pauseAnnounced.remove(rollout.id) != nil {
            control(rollout, .resume, "resumed", clusters: clusters)
        }
        guard rollout.state == .running else { return }
        let agents = try store.rolloutAgents(rolloutID: rollout.id)

        // The failure budget covers the whole rollout: past it, nothing more is started.
        let bad = agents.filter { $0.state == .failed || $0.state == .rolledBack }.count
        if bad > 0, bad * 100 > rollout.policy.failureBudgetPercent * max(agents.count, 1) {
            let reason = "the failure budget of \(rollout.policy.failureBudgetPercent)% is spent: \(bad) of \(agents.count) agents failed"
            _ = try store.transitionRollout(id: rollout.id, to: .failed, reason: reason, actor: actor)
            control(rollout, .abort, reason, clusters: clusters)
            Logs.rollouts.warning("rollout \(rollout.id) failed: \(reason)", ["rollout": "\(rollout.id)", "state": "failed"])
            return
        }

        var states = Dictionary(uniqueKeysWithValues: clusters.map { ($0.clusterID, $0.state) })
        for cluster in clusters where cluster.state == .running {
            states[cluster.clusterID] = try drive(rollout, cluster, agents.filter { $0.clusterID == cluster.clusterID })
        }
        try startClusters(rollout, clusters, &states)

        if states.values.allSatisfy(\.isTerminal) {
            let failed = states.values.filter { $0 == .failed }.count
            let finalRows = try store.rolloutAgents(rolloutID: rollout.id)
            let rolledBack = finalRows.filter { $0.state == .rolledBack }.count
            let failedAgents = finalRows.filter { $0.state == .failed }.count
            if failed == 0, rolledBack + failedAgents == 0 {
                let reason = "every cluster succeeded: all \(finalRows.count) agents run \(rollout.releaseVersion)"
                _ = try store.transitionRollout(id: rollout.id, to: .succeeded, reason: reason, actor: actor)
                Logs.rollouts.info("rollout \(rollout.id) succeeded", ["rollout": "\(rollout.id)", "state": "succeeded"])
            } else if failed == 0 {
                // Within the failure budget (checked above), but not every agent runs the
                // release: a different outcome from `succeeded`, with the count in the reason.
                let reason = "succeeded with \(rolledBack) rolled back and \(failedAgents) failed of \(finalRows.count) agents "
                    + "(within the failure budget of \(rollout.policy.failureBudgetPercent)%)"
                _ = try store.transitionRollout(id: rollout.id, to: .partial, reason: reason, actor: actor)
                Logs.rollouts.warning("rollout \(rollout.id) partial: \(reason)", ["rollout": "\(rollout.id)", "state": "partial"])
            } else {
                let reason = "\(failed) of \(states.count) clusters failed"
                _ = try store.transitionRollout(id: rollout.id, to: .failed, reason: reason, actor: actor)
                Logs.rollouts.warning("rollout \(rollout.id) failed: \(reason)", ["rollout": "\(rollout.id)", "state": "failed"])
            }
        }
    }

    /// Starts pending clusters in plan order, wave by wave, up to the parallel limit.
    private mutating func startClusters(
        _ rollout: RolloutRecord, _ clusters: [RolloutClusterRecord], _ states: inout [Int64: RolloutClusterState]
    ) throws(StoreError) {
        var running = states.values.filter { $0 == .running }.count
        for cluster in clusters where states[cluster.clusterID] == .pending {
            guard running < rollout.policy.maxParallelClusters else { return }
            // A later wave waits until every cluster of the earlier waves has finished.
            let earlierOpen = clusters.contains { $0.wave < cluster.wave && !(states[$0.clusterID]?.isTerminal ?? true) }
            if earlierOpen { return }
            _ = try store.transitionRolloutCluster(
                rolloutID: rollout.id, clusterID: cluster.clusterID, to: .running, reason: "started (wave \(cluster.waveNumber))", actor: actor)
            states[cluster.clusterID] = .running
            running += 1
            // Agents already on the target version have nothing to do.
            for agent in try store.agents(inCluster: cluster.clusterID) where agent.mainVersion == rollout.releaseVersion {
                if let row = try store.rolloutAgent(rolloutID: rollout.id, agentID: agent.id), row.state == .pending {
                    _ = try store.transitionRolloutAgent(
                        rolloutID: rollout.id, agentID: agent.id, to: .healthy, error: nil, actor: actor)
                }
            }
            let rows = try store.rolloutAgents(rolloutID: rollout.id, clusterID: cluster.clusterID)
            var started = cluster
            started.state = .running
            states[cluster.clusterID] = try drive(rollout, started, rows)
        }
    }

    /// One running cluster: members first (through the leader), then the leader (second
    /// instruction through the best upgraded member), then done.
    private mutating func drive(
        _ rollout: RolloutRecord, _ cluster: RolloutClusterRecord, _ rows: [RolloutAgentRecord]
    ) throws(StoreError) -> RolloutClusterState {
        guard let record = try store.cluster(id: cluster.clusterID), let leaderID = record.leaderID else {
            return .running  // no live agent to lead it yet; the leader sweep will name one.
        }
        let key = ClusterKey(rollout: rollout.id, cluster: cluster.clusterID)
        if try failStalled(rollout, cluster, rows, leaderID: leaderID) {
            return .running  // the next step sees the failed rows (and the budget)
        }
        let members = rows.filter { $0.agentID != leaderID }
        let leaderRow = rows.first { $0.agentID == leaderID }
        if members.allSatisfy(\.state.isTerminal) {
            switch leaderRow?.state {
            case .healthy?, nil:
                return try finishUpgraded(rollout, cluster, rows)
            case .failed?, .rolledBack?:
                // The leader named now may be a member that failed earlier (the old leader
                // restarts into the release it upgraded to, and a failover may pick anyone):
                // with every agent done, the cluster upgraded if anyone in it did, and the
                // failure budget judges the rest.
                if rows.contains(where: { $0.state == .healthy }) { return try finishUpgraded(rollout, cluster, rows) }
                return try finish(rollout, cluster, .failed, "the leader \(leaderID) did not upgrade: \(leaderRow?.error ?? "")")
            default:
                break
            }
            // The leader's turn (the patent's second instruction).
            let healthy = members.filter { $0.state == .healthy }
            if healthy.isEmpty && !members.isEmpty {
                return try finish(rollout, cluster, .failed, "no member upgraded, so the leader \(leaderID) is not upgraded")
            }
            // The leader is upgrading. (An acting leader promoted mid-download still shows
            // instructed or downloading: it stopped that download and waits for the cue too.)
            if leaderRow?.state == .installing { return .running }
            if let sixth = try bestHealthyMember(healthy) {
                if outcome.memory.cues[key].map({ $0.member != sixth || now.since($0.at) >= resend }) ?? true {
                    // The leader upgrades only to what the coordinator named (an acting leader
                    // may have missed the expectation while it was a member).
                    if connected.contains(leaderID), let release = try store.release(version: rollout.releaseVersion) {
                        // With the members' recorded outcomes: a member the coordinator ended (lost,
                        // timed out) is done for the leader too, or it would wait for it forever.
                        outcome.sends.append((leaderID, Instruction(
                            leaderEpoch: UInt64(record.leaderEpoch), clusterRollout: try clusterOrder(rollout, rows),
                            expectation: rollout.expectation(release))))
                    }
                    outcome.sends.append((sixth, Instruction(
                        leaderEpoch: UInt64(record.leaderEpoch),
                        secondInstructionCue: SecondInstructionCue(rolloutID: UInt64(rollout.id), releaseVersion: rollout.releaseVersion))))
                    outcome.memory.cues[key] = (sixth, now)
                    Logs.rollouts.info("rollout \(rollout.id), \(cluster.prefix): \(sixth) is cued to tell the leader \(leaderID) to upgrade", ["rollout": "\(rollout.id)", "cluster": cluster.prefix, "agent": sixth])
                    _ = try store.appendEvent(
                        actor: actor, kind: .rolloutSecondInstructionCue, subject: EventSubject.agent(sixth),
                        refs: EventRefs(rollout: rollout.id, cluster: cluster.prefix),
                        detail: "rollout \(rollout.id): \(sixth), the upgraded member with the highest idle weight, is to tell the leader \(leaderID) to upgrade")
                }
            } else if members.isEmpty, connected.contains(leaderID) {
                // A cluster of one: the coordinator instructs its only agent directly.
                try orderLeaderDirectly(rollout, cluster, record, key)
            }
            return .running
        }
        // Members still at work: make sure the current leader has the cluster's order.
        let sent = outcome.memory.orders[key]
        let limit = try failureLimit(rollout, clusterID: cluster.clusterID)
        // A failure elsewhere lowers this cluster's limit: the leader hears of it at once.
        let stale = sent.map {
            $0.leader != leaderID || $0.epoch != record.leaderEpoch || now.since($0.at) >= resend || $0.failureLimit != limit
        } ?? true
        if stale, connected.contains(leaderID), let order = try clusterOrder(rollout, rows) {
            // Every agent of the cluster first hears from the coordinator itself what the
            // rollout installs: the leader only relays, and its orders are checked against this.
            if let release = try store.release(version: rollout.releaseVersion) {
                let expectation = rollout.expectation(release)
                for row in rows where connected.contains(row.agentID) && !row.state.isTerminal {
                    outcome.sends.append((row.agentID, Instruction(leaderEpoch: UInt64(record.leaderEpoch), expectation: expectation)))
                }
            }
            outcome.sends.append((leaderID, Instruction(leaderEpoch: UInt64(record.leaderEpoch), clusterRollout: order)))
            outcome.memory.orders[key] = (leaderID, record.leaderEpoch, now, order.failureLimit)
        }
        return .running
    }

    /// A cluster where nothing is in flight and nothing changed for `stall` waits on someone who
    /// will not act: a member that is gone (failed as lost), a leader that withholds its first
    /// instructions (its pending members fail), or a leader that never upgrades after its
    /// members are done (it fails). So a rollout always ends; the failure budget decides how.
    private mutating func failStalled(
        _ rollout: RolloutRecord, _ cluster: RolloutClusterRecord, _ rows: [RolloutAgentRecord], leaderID: String
    ) throws(StoreError) -> Bool {
        let waiting = rows.filter { !$0.state.isTerminal }
        let members = waiting.filter { $0.agentID != leaderID }
        let stuck: [RolloutAgentRecord]
        if !members.isEmpty {
            // Members' turn. (An acting leader's own row may still say instructed or
            // downloading from before it was promoted: that is no work in progress.)
            guard !members.contains(where: { $0.state.isInFlight }) else { return false }
            stuck = members
        } else {
            // The leader's turn: only its install is work in progress.
            guard let leaderRow = waiting.first, leaderRow.state != .installing else { return false }
            stuck = [leaderRow]
        }
        let lastChange = ([cluster.startedAt].compactMap { $0 } + rows.map(\.enteredAt)).max() ?? now
        guard now.since(lastChange) >= stall else { return false }
        let quiet = "for \(Int(stall.components.seconds)) s"
        for row in stuck {
            let why: String
            if !connected.contains(row.agentID) {
                why = "lost: \(row.agentID) was not connected to the coordinator while its cluster waited on it \(quiet)"
            } else if row.agentID == leaderID {
                why = "the leader \(leaderID) did not upgrade \(quiet) after its members were done"
            } else {
                why = "not instructed: the leader \(leaderID) sent \(row.agentID) no first instruction \(quiet)"
            }
            _ = try store.transitionRolloutAgent(rolloutID: rollout.id, agentID: row.agentID, to: .failed, error: why, actor: actor)
            Logs.rollouts.info("rollout \(rollout.id), \(cluster.prefix): \(why)", ["rollout": "\(rollout.id)", "cluster": cluster.prefix])
        }
        return true
    }

    /// True when every healthy agent of the cluster reports both programs on the release. An
    /// agent still behind after the stall timeout is recorded failed with what it runs.
    private mutating func bothProgramsOnRelease(
        _ rollout: RolloutRecord, _ cluster: RolloutClusterRecord, _ rows: [RolloutAgentRecord]
    ) throws(StoreError) -> Bool {
        var behind: [(String, String, String)] = []
        for row in rows where row.state == .healthy {
            guard let agent = try store.agent(id: row.agentID) else { continue }
            if agent.mainVersion != rollout.releaseVersion || agent.upgraderVersion != rollout.releaseVersion {
                behind.append((agent.id, agent.mainVersion, agent.upgraderVersion))
            }
        }
        guard !behind.isEmpty else { return true }
        let lastChange = rows.map(\.enteredAt).max() ?? now
        guard now.since(lastChange) >= stall else { return false }
        for (id, main, upgrader) in behind {
            let why = "healthy, but after \(Int(stall.components.seconds)) s it still runs main \(main) and upgrader \(upgrader), not \(rollout.releaseVersion) on both"
            _ = try store.correctHealthy(rolloutID: rollout.id, agentID: id, to: .failed, why: why, actor: actor)
            Logs.rollouts.warning("rollout \(rollout.id), \(cluster.prefix): \(id): \(why)", ["rollout": "\(rollout.id)", "cluster": cluster.prefix, "agent": id])
        }
        return false
    }

    /// Every agent of the cluster is done and some run the release: done once every healthy
    /// one runs it on both programs (its upgrader follows its main program a moment later).
    private mutating func finishUpgraded(
        _ rollout: RolloutRecord, _ cluster: RolloutClusterRecord, _ rows: [RolloutAgentRecord]
    ) throws(StoreError) -> RolloutClusterState {
        guard try bothProgramsOnRelease(rollout, cluster, rows) else { return .running }
        let healthy = rows.filter { $0.state == .healthy }.count
        if healthy == rows.count {
            return try finish(rollout, cluster, .succeeded, "every agent is healthy on \(rollout.releaseVersion)")
        }
        let rolledBack = rows.filter { $0.state == .rolledBack }.count
        return try finish(rollout, cluster, .succeeded,
            "\(healthy) of \(rows.count) agents are healthy on \(rollout.releaseVersion); \(rolledBack) rolled back, \(rows.count - healthy - rolledBack) failed")
    }

    private mutating func finish(
        _ rollout: RolloutRecord, _ cluster: RolloutClusterRecord, _ state: RolloutClusterState, _ reason: String
    ) throws(StoreError) -> RolloutClusterState {
        _ = try store.transitionRolloutCluster(rolloutID: rollout.id, clusterID: cluster.clusterID, to: state, reason: reason, actor: actor)
        Logs.rollouts.info("rollout \(rollout.id), \(cluster.prefix): \(state.rawValue): \(reason)", ["rollout": "\(rollout.id)", "cluster": cluster.prefix, "state": state.rawValue])
        return state
    }

    /// The upgraded member with the highest idle weight that is live and connected (the
    /// patent's sixth server); ties by id.
    private func bestHealthyMember(_ healthy: [RolloutAgentRecord]) throws(StoreError) -> String? {
        var candidates: [LeaderCandidate] = []
        for row in healthy {
            guard let agent = try store.agent(id: row.agentID), connected.contains(agent.id) else { continue }
            candidates.append(LeaderCandidate(id: agent.id, weight: agent.weight, isLive: agent.isLive))
        }
        return LeaderElection.best(candidates)?.id
    }

    private func clusterOrder(_ rollout: RolloutRecord, _ rows: [RolloutAgentRecord]) throws(StoreError) -> ClusterRolloutOrder? {
        guard let release = try store.release(version: rollout.releaseVersion) else { return nil }
        let members = rows.map { row in
            MemberStatus(
                agentID: row.agentID, connected: connected.contains(row.agentID),
                progress: AgentProgress(
                    rolloutID: UInt64(rollout.id), state: AgentRolloutState(row.state), releaseVersion: rollout.releaseVersion,
                    bytesDone: UInt64(max(0, row.bytes)), error: row.error ?? ""))
        }
        return ClusterRolloutOrder(
            rolloutID: UInt64(rollout.id), releaseVersion: rollout.releaseVersion, signedManifest: release.signedManifest,
            policy: CascadeAPI.RolloutPolicy(rollout.policy), members: members,
            weights: CascadeAPI.IdleWeights(store.configuration.weights),
            failureLimit: try failureLimit(rollout, clusterID: rows.first?.clusterID))
    }

    /// How many failed or rolled-back agents of one cluster spend the rollout's budget, given
    /// the failures of the other clusters (services.md §6 `failure_limit`): the leader stops
    /// at that count itself, before the coordinator's abort can reach it.
    private func failureLimit(_ rollout: RolloutRecord, clusterID: Int64?) throws(StoreError) -> UInt32 {
        let all = try store.rolloutAgents(rolloutID: rollout.id)
        let allowance = all.count * rollout.policy.failureBudgetPercent / 100
        let elsewhere = all.filter { $0.clusterID != clusterID && ($0.state == .failed || $0.state == .rolledBack) }.count
        return UInt32(max(1, allowance - elsewhere + 1))
    }

    private mutating func orderLeaderDirectly(
        _ rollout: RolloutRecord, _ cluster: RolloutClusterRecord, _ record: ClusterRecord, _ key: ClusterKey
    ) throws(StoreError) {
        guard let leaderID = record.leaderID, let release = try store.release(version: rollout.releaseVersion) else { return }
        if let sent = outcome.memory.cues[key], sent.member == leaderID, now.since(sent.at) < resend { return }
        let order = UpgradeOrder(
            rolloutID: UInt64(rollout.id), releaseVersion: rollout.releaseVersion, signedManifest: release.signedManifest,
            healthTimeoutSeconds: UInt32(rollout.policy.healthTimeoutSeconds), rollback: rollout.policy.rollback,
            fetch: FetchHint(rolloutID: UInt64(rollout.id), source: .coordinator, reason: "the cluster has no other member"))
        outcome.sends.append((leaderID, Instruction(leaderEpoch: UInt64(record.leaderEpoch), upgrade: order, expectation: rollout.expectation(release))))
        outcome.memory.cues[key] = (leaderID, now)
    }

    /// Tells the leaders of the rollout's running clusters to pause, resume or abort, and every
    /// member not done yet too: they hear it from the coordinator itself, so a pause holds a
    /// finished download before its install and an abort stops it, without waiting for the
    /// leader's relay (every hop saved is an install that does not start). Pending members are
    /// included: the leader may have instructed one whose report has not arrived yet.
    private mutating func control(_ rollout: RolloutRecord, _ action: RolloutAction, _ reason: String, clusters: [RolloutClusterRecord]) {
        let control = RolloutControl(rolloutID: UInt64(rollout.id), action: action, reason: reason)
        for cluster in clusters where cluster.state == .running {
            guard let record = try? store.cluster(id: cluster.clusterID) else { continue }
            if let leaderID = record.leaderID {
                outcome.sends.append((leaderID, Instruction(leaderEpoch: UInt64(record.leaderEpoch), control: control)))
            }
            let rows = (try? store.rolloutAgents(rolloutID: rollout.id, clusterID: cluster.clusterID)) ?? []
            for row in rows where row.agentID != record.leaderID && !row.state.isTerminal && row.state != .installing
            && connected.contains(row.agentID) {
                outcome.sends.append((row.agentID, Instruction(leaderEpoch: UInt64(record.leaderEpoch), control: control)))
            }
        }
    }
}
