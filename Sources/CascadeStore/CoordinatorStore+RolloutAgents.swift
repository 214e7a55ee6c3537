extension CoordinatorStore {
    private static let rolloutAgentColumns = """
        rollout_id, agent_id, cluster_id, state, bytes, entered_ms, deadline_ms, error FROM rollout_agents
        """

    private static func rolloutAgentRecord(_ row: Row) throws(StoreError) -> RolloutAgentRecord {
        RolloutAgentRecord(
            rolloutID: row.int64(0), agentID: row.text(1), clusterID: row.int64(2),
            state: try row.value(3, as: RolloutAgentState.self), bytes: row.int64(4), enteredAt: row.timestamp(5),
            deadline: row.optionalTimestamp(6), error: row.optionalText(7))
    }

    // MARK: - Reads

    public func rolloutAgent(rolloutID: Int64, agentID: String) throws(StoreError) -> RolloutAgentRecord? {
        try database.queryOne(
            "SELECT \(Self.rolloutAgentColumns) WHERE rollout_id = ? AND agent_id = ?", [.integer(rolloutID), .text(agentID)],
            Self.rolloutAgentRecord)
    }

    /// The rollout's agents (of one cluster if given), by id.
    public func rolloutAgents(rolloutID: Int64, clusterID: Int64? = nil) throws(StoreError) -> [RolloutAgentRecord] {
        try database.query(
            "SELECT \(Self.rolloutAgentColumns) WHERE rollout_id = ?1 AND (?2 IS NULL OR cluster_id = ?2) ORDER BY agent_id",
            [.integer(rolloutID), .optionalInteger(clusterID)], Self.rolloutAgentRecord)
    }

    /// Agents of any rollout still in a working state whose deadline is at or before `now`
    /// (default: the store's clock), earliest deadline first.
    public func expiredRolloutAgents(at now: Timestamp? = nil) throws(StoreError) -> [RolloutAgentRecord] {
        try database.query(
            // A paused rollout's clocks stand still: a member holding a downloaded release
            // until the resume is not late (resuming moves its deadline by the pause).
            """
            SELECT \(Self.rolloutAgentColumns) WHERE deadline_ms IS NOT NULL AND deadline_ms <= ?
                AND rollout_id NOT IN (SELECT id FROM rollouts WHERE state = 'paused')
            ORDER BY deadline_ms, rollout_id, agent_id
            """,
            [.time(now ?? clock())], Self.rolloutAgentRecord)
    }

    /// Counts per agent and cluster state, and bytes downloaded, for status views.
    public func rolloutProgress(rolloutID: Int64) throws(StoreError) -> RolloutProgress {
        _ = try requireRollout(rolloutID)
        var progress = RolloutProgress(agents: [:], clusters: [:], bytes: 0)
        for (state, count, bytes) in try database.query(
            "SELECT state, count(*), total(bytes) FROM rollout_agents WHERE rollout_id = ? GROUP BY state", [.integer(rolloutID)],
            { (row: Row) throws(StoreError) in (try row.value(0, as: RolloutAgentState.self), row.int(1), Int64(row.double(2))) }
        ) {
            progress.agents[state] = count
            progress.bytes += bytes
        }
        for (state, count) in try database.query(
            "SELECT state, count(*) FROM rollout_clusters WHERE rollout_id = ? GROUP BY state", [.integer(rolloutID)],
            { (row: Row) throws(StoreError) in (try row.value(0, as: RolloutClusterState.self), row.int(1)) }
        ) {
            progress.clusters[state] = count
        }
        return progress
    }

    // MARK: - Changes

    /// Adds an agent that joined one of the rollout's clusters after it was created (pending).
    /// Returns the existing row if the agent is already part of the rollout.
    public func addRolloutAgent(rolloutID: Int64, agentID: String) throws(StoreError) -> RolloutAgentRecord {
        try database.transaction { () throws(StoreError) -> RolloutAgentRecord in
            _ = try requireRollout(rolloutID)
            if let existing = try rolloutAgent(rolloutID: rolloutID, agentID: agentID) { return existing }
            guard let agent = try agent(id: agentID) else { throw StoreError(.notFound, "no agent '\(agentID)' is registered") }
            guard try rolloutCluster(rolloutID: rolloutID, clusterID: agent.clusterID) != nil else {
                throw StoreError(.failedPrecondition, "agent '\(agentID)' is in \(agent.clusterPrefix), which rollout \(rolloutID) does not cover")
            }
            try database.execute(
                "INSERT INTO rollout_agents (rollout_id, agent_id, cluster_id, state, bytes, entered_ms) VALUES (?, ?, ?, 'pending', 0, ?)",
                [.integer(rolloutID), .text(agentID), .integer(agent.clusterID), .time(clock())])
            return try requireRolloutAgent(rolloutID, agentID)
        }
    }

    /// Moves one agent of a rollout (see `RolloutAgentState`); illegal moves throw
    /// `.illegalTransition`, re-entering the current state changes nothing. Entering a working
    /// state sets its hard deadline; `error` is recorded as given (nil clears it). Instructing an
    /// agent needs the rollout and the agent's cluster running.
    public func transitionRolloutAgent(
        rolloutID: Int64, agentID: String, to next: RolloutAgentState, error: String? = nil, actor: EventActor
    ) throws(StoreError) -> RolloutAgentRecord {
        try database.transaction { () throws(StoreError) -> RolloutAgentRecord in
            try transitionAgentInTransaction(rolloutID: rolloutID, agentID: agentID, to: next, error: error, actor: actor)
        }
    }

    /// The same for several agents at once (a leader instructing a batch), all or nothing.
    public func transitionRolloutAgents(
        rolloutID: Int64, agentIDs: [String], to next: RolloutAgentState, error: String? = nil, actor: EventActor
    ) throws(StoreError) -> [RolloutAgentRecord] {
        try database.transaction { () throws(StoreError) -> [RolloutAgentRecord] in
            var results: [RolloutAgentRecord] = []
            for agentID in agentIDs {
                results.append(try transitionAgentInTransaction(rolloutID: rolloutID, agentID: agentID, to: next, error: error, actor: actor))
            }
            return results
        }
    }

    /// Records bytes received by a downloading agent. Returns false (and records nothing) if the
    /// agent is no longer downloading — a late report.
    @discardableResult
    public func recordDownloadProgress(rolloutID: Int64, agentID: String, bytes: Int64) throws(StoreError) -> Bool {
        guard bytes >= 0 else { throw StoreError(.invalidArgument, "downloaded bytes must not be negative (\(bytes))") }
        _ = try requireRolloutAgent(rolloutID, agentID)
        return try database.execute(
            "UPDATE rollout_agents SET bytes = ? WHERE rollout_id = ? AND agent_id = ? AND state = 'downloading'",
            [.integer(bytes), .integer(rolloutID), .text(agentID)]) == 1
    }

    /// Fails every agent whose deadline has passed, with an error naming the state it was stuck
    /// in, in one transaction. Returns the failed rows.
    public func failExpiredRolloutAgents(actor: EventActor = .coordinator()) throws(StoreError) -> [RolloutAgentRecord] {
        try database.transaction { () throws(StoreError) -> [RolloutAgentRecord] in
            let now = clock()
            var failed: [RolloutAgentRecord] = []
            for expired in try expiredRolloutAgents(at: now) {
                let allowed = (expired.deadline?.milliseconds ?? 0) - expired.enteredAt.milliseconds
                failed.append(try transitionAgentInTransaction(
                    rolloutID: expired.rolloutID, agentID: expired.agentID, to: .failed,
                    error: "timed out: \(expired.state.rawValue) for longer than \(Self.seconds(allowed))", actor: actor))
            }
            return failed
        }
    }

    // MARK: - Helpers

    /// "120 s", or "1.5 s" when not whole.
    static func seconds(_ milliseconds: Int64) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
    }

    private func requireRolloutAgent(_ rolloutID: Int64, _ agentID: String) throws(StoreError) -> RolloutAgentRecord {
        guard let record = try rolloutAgent(rolloutID: rolloutID, agentID: agentID) else {
            throw StoreError(.notFound, "agent '\(agentID)' is not part of rollout \(rolloutID)")
        }
        return record
    }

    private func transitionAgentInTransaction(
        rolloutID: Int64, agentID: String, to next: RolloutAgentState, error: String?, actor: EventActor
    ) throws(StoreError) -> RolloutAgentRecord {
        let rollout = try requireRollout(rolloutID)
        let current = try requireRolloutAgent(rolloutID, agentID)
        if current.state == next { return current }
        guard current.state.canTransition(to: next) else {
            throw StoreError(
                .illegalTransition,
                "agent '\(agentID)' is \(current.state.rawValue) in rollout \(rolloutID) and cannot become \(next.rawValue)")
        }
        if next == .instructed {
            guard rollout.state == .running else {
                throw StoreError(.failedPrecondition, "rollout \(rolloutID) is \(rollout.state.rawValue); agent '\(agentID)' cannot be instructed")
            }
            let clusterState = try rolloutCluster(rolloutID: rolloutID, clusterID: current.clusterID)?.state
            guard clusterState == .running else {
                throw StoreError(
                    .failedPrecondition,
                    "the cluster of agent '\(agentID)' is \(clusterState?.rawValue ?? "missing") in rollout \(rolloutID); it cannot be instructed")
            }
        }
        let now = clock()
        let limit = configuration.agentTimeouts.limit(for: next, healthTimeoutSeconds: rollout.policy.healthTimeoutSeconds)
        try database.execute(
            "UPDATE rollout_agents SET state = ?, entered_ms = ?, deadline_ms = ?, error = ? WHERE rollout_id = ? AND agent_id = ?",
            [.text(next.rawValue), .time(now), .optionalTime(limit.map { now + $0 }), .optionalText(error),
             .integer(rolloutID), .text(agentID)])
        try appendEvent(
            actor: actor, kind: .rolloutAgentState, subject: EventSubject.rollout(rolloutID),
            refs: EventRefs(cluster: try cluster(id: current.clusterID)?.prefix, agent: agentID),
            detail: "agent \(agentID): \(current.state.rawValue) → \(next.rawValue)" + (error.map { ": \($0)" } ?? ""))
        return try requireRolloutAgent(rolloutID, agentID)
    }
}

extension CoordinatorStore {
    /// Corrects an agent's recorded healthy state when the agent itself shows it runs another
    /// version (its upgrader rolled it back after it had reported healthy): the record becomes
    /// `rolled-back`, with an event. The one move out of a terminal state: the record follows
    /// what the agent runs. Returns nil when the row is not `healthy`.
    @discardableResult
    public func correctHealthy(rolloutID: Int64, agentID: String, runs version: String, actor: EventActor) throws(StoreError) -> RolloutAgentRecord? {
        let rollout = try requireRollout(rolloutID)
        return try correctHealthy(
            rolloutID: rolloutID, agentID: agentID, to: .rolledBack,
            why: "recorded healthy on \(rollout.releaseVersion), but it runs \(version)", actor: actor)
    }

    /// Moves a `healthy` row to `state` (rolled-back or failed) with `why`, and an event.
    @discardableResult
    public func correctHealthy(
        rolloutID: Int64, agentID: String, to state: RolloutAgentState, why: String, actor: EventActor
    ) throws(StoreError) -> RolloutAgentRecord? {
        try database.transaction { () throws(StoreError) -> RolloutAgentRecord? in
            guard let row = try rolloutAgent(rolloutID: rolloutID, agentID: agentID), row.state == .healthy else { return nil }
            try database.execute(
                "UPDATE rollout_agents SET state = ?, entered_ms = ?, deadline_ms = NULL, error = ? WHERE rollout_id = ? AND agent_id = ?",
                [.text(state.rawValue), .time(clock()), .text(why), .integer(rolloutID), .text(agentID)])
            try appendEvent(
                actor: actor, kind: .rolloutRecordCorrected, subject: EventSubject.rollout(rolloutID),
                refs: EventRefs(cluster: try cluster(id: row.clusterID)?.prefix, agent: agentID),
                detail: "agent \(agentID): healthy → \(state.rawValue): \(why)")
            return try requireRolloutAgent(rolloutID, agentID)
        }
    }

    /// The patent's sixth server: among the cluster's live members (not its leader) that are
    /// healthy in this rollout, the one with the highest idle weight (ties by smallest id). It
    /// sends the leader the second instruction. Nil when no member qualifies.
    public func bestHealthyMember(rolloutID: Int64, clusterID: Int64) throws(StoreError) -> AgentRecord? {
        let leaderID = try cluster(id: clusterID)?.leaderID
        let healthy = Set(try rolloutAgents(rolloutID: rolloutID, clusterID: clusterID).filter { $0.state == .healthy }.map(\.agentID))
        let members = try agents(inCluster: clusterID).filter { $0.id != leaderID && healthy.contains($0.id) }
        let best = LeaderElection.best(members.map { LeaderCandidate(id: $0.id, weight: $0.weight, isLive: $0.isLive) })
        return members.first { $0.id == best?.id }
    }
}
