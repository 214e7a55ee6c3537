import Foundation

extension CoordinatorStore {
    private static let rolloutColumns = """
        id, release_version, clusters_json, max_unavailable, max_parallel_clusters, canary_clusters,
        failure_budget_percent, health_timeout_s, rollback, state, state_reason, created_by_role, created_by_id,
        created_ms, started_ms, finished_ms, updated_ms, downgrade, client_token, from_version FROM rollouts
        """

    private static func rolloutRecord(_ row: Row) throws(StoreError) -> RolloutRecord {
        let json = row.text(2)
        guard let clusters = try? JSONDecoder().decode([String].self, from: Data(json.utf8)) else {
            throw StoreError(.corrupt, "rollout \(row.int64(0)) has a malformed cluster list '\(json)'")
        }
        let policy = RolloutPolicy(
            clusters: clusters, maxUnavailable: row.int(3), maxParallelClusters: row.int(4), canaryClusters: row.int(5),
            failureBudgetPercent: row.int(6), healthTimeoutSeconds: row.int(7), rollback: row.bool(8),
            downgrade: row.blob(17))
        return RolloutRecord(
            id: row.int64(0), releaseVersion: row.text(1), policy: policy, state: try row.value(9, as: RolloutState.self),
            stateReason: row.optionalText(10), createdBy: EventActor(role: row.text(11), id: row.text(12)),
            createdAt: row.timestamp(13), startedAt: row.optionalTimestamp(14), finishedAt: row.optionalTimestamp(15),
            updatedAt: row.timestamp(16), clientToken: row.text(18), fromVersion: row.text(19))
    }

    private static let rolloutClusterColumns = """
        rc.rollout_id, rc.cluster_id, c.prefix, rc.position, rc.wave, rc.state, rc.reason, rc.started_ms,
        rc.finished_ms, rc.updated_ms FROM rollout_clusters rc JOIN clusters c ON c.id = rc.cluster_id
        """

    private static func rolloutClusterRecord(_ row: Row) throws(StoreError) -> RolloutClusterRecord {
        RolloutClusterRecord(
            rolloutID: row.int64(0), clusterID: row.int64(1), prefix: row.text(2), position: row.int(3), wave: row.int(4),
            state: try row.value(5, as: RolloutClusterState.self), reason: row.optionalText(6),
            startedAt: row.optionalTimestamp(7), finishedAt: row.optionalTimestamp(8), updatedAt: row.timestamp(9))
    }

    // MARK: - Reads

    public func rollout(id: Int64) throws(StoreError) -> RolloutRecord? {
        try database.queryOne("SELECT \(Self.rolloutColumns) WHERE id = ?", [.integer(id)], Self.rolloutRecord)
    }

    /// The rollout `actor` created with `clientToken` (a non-empty token), if any.
    public func rollout(clientToken: String, createdBy actor: EventActor) throws(StoreError) -> RolloutRecord? {
        guard !clientToken.isEmpty else { return nil }
        return try database.queryOne(
            "SELECT \(Self.rolloutColumns) WHERE created_by_id = ? AND client_token = ?",
            [.text(actor.id), .text(clientToken)], Self.rolloutRecord)
    }

    /// Rollouts in any of `states` (all when nil), oldest first.
    public func rollouts(states: Set<RolloutState>? = nil) throws(StoreError) -> [RolloutRecord] {
        let all = try database.query("SELECT \(Self.rolloutColumns) ORDER BY id", [], Self.rolloutRecord)
        guard let states else { return all }
        return all.filter { states.contains($0.state) }
    }

    /// Rollouts not yet finished: what a restarted coordinator resumes.
    public func activeRollouts() throws(StoreError) -> [RolloutRecord] {
        try database.query(
            "SELECT \(Self.rolloutColumns) WHERE state IN ('requested', 'running', 'paused') ORDER BY id", [], Self.rolloutRecord)
    }

    /// The rollout's clusters in rollout order.
    public func rolloutClusters(rolloutID: Int64) throws(StoreError) -> [RolloutClusterRecord] {
        try database.query(
            "SELECT \(Self.rolloutClusterColumns) WHERE rc.rollout_id = ? ORDER BY rc.position", [.integer(rolloutID)], Self.rolloutClusterRecord)
    }

    public func rolloutCluster(rolloutID: Int64, clusterID: Int64) throws(StoreError) -> RolloutClusterRecord? {
        try database.queryOne(
            "SELECT \(Self.rolloutClusterColumns) WHERE rc.rollout_id = ? AND rc.cluster_id = ?",
            [.integer(rolloutID), .integer(clusterID)], Self.rolloutClusterRecord)
    }

    func requireRollout(_ id: Int64) throws(StoreError) -> RolloutRecord {
        guard let rollout = try rollout(id: id) else { throw StoreError(.notFound, "no rollout \(id)") }
        return rollout
    }

    // MARK: - Create

    /// Records a rollout as `requested`, with its clusters in the planner's order and every agent
    /// currently in those clusters as `pending`, in one transaction. The release must be
    /// complete. Whether the version is lower than the fleet's (and so needs `rollback`) is the
    /// coordinator's check; the flag is recorded as given.
    /// `clientToken` and `fromVersion` are recorded as given (see `RolloutRecord`).
    public func createRollout(
        release version: String, policy: RolloutPolicy, actor: EventActor, clientToken: String = "", fromVersion: String = ""
    ) throws(StoreError) -> RolloutRecord {
        try database.transaction { () throws(StoreError) -> RolloutRecord in
            let plan = try RolloutPlanner.plan(policy: policy, clusters: try clusters())
            return try createRollout(
                release: version, policy: policy, plan: plan, actor: actor, clientToken: clientToken, fromVersion: fromVersion)
        }
    }

    /// As above with an explicit plan (cluster order and waves).
    public func createRollout(
        release version: String, policy: RolloutPolicy, plan: [RolloutClusterPlan], actor: EventActor,
        clientToken: String = "", fromVersion: String = ""
    ) throws(StoreError) -> RolloutRecord {
        try policy.validate()
        guard !plan.isEmpty else { throw StoreError(.invalidArgument, "a rollout needs at least one cluster") }
        guard Set(plan.map(\.clusterID)).count == plan.count else {
            throw StoreError(.invalidArgument, "a rollout plan lists a cluster twice")
        }
        guard plan.allSatisfy({ $0.wave >= 0 }) else { throw StoreError(.invalidArgument, "waves must not be negative") }
        let clustersJSON: String
        do {
            clustersJSON = String(decoding: try JSONEncoder().encode(policy.clusters), as: UTF8.self)
        } catch {
            throw StoreError(.invalidArgument, "the cluster list cannot be encoded: \(error)")
        }
        return try database.transaction { () throws(StoreError) -> RolloutRecord in
            let release = try requireRelease(version)
            guard release.isComplete else {
                throw StoreError(.failedPrecondition, "release \(version) is not completely pushed yet")
            }
            let now = clock()
            try database.execute(
                """
                INSERT INTO rollouts (release_version, clusters_json, max_unavailable, max_parallel_clusters, canary_clusters,
                    failure_budget_percent, health_timeout_s, rollback, state, created_by_role, created_by_id,
                    created_ms, updated_ms, downgrade, client_token, from_version)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?, ?, ?, ?, ?, ?)
                """,
                [.text(version), .text(clustersJSON), .int(policy.maxUnavailable), .int(policy.maxParallelClusters),
                 .int(policy.canaryClusters), .int(policy.failureBudgetPercent), .int(policy.healthTimeoutSeconds),
                 .bool(policy.rollback), .text(actor.role), .text(actor.id), .time(now), .time(now), .blob(policy.downgrade),
                 .text(clientToken), .text(fromVersion)])
            let id = database.lastInsertRowID
            var agentCount = 0
            for (position, step) in plan.enumerated() {
                guard try cluster(id: step.clusterID) != nil else { throw StoreError(.notFound, "no cluster \(step.clusterID)") }
                try database.execute(
                    "INSERT INTO rollout_clusters (rollout_id, cluster_id, position, wave, state, updated_ms) VALUES (?, ?, ?, ?, 'pending', ?)",
                    [.integer(id), .integer(step.clusterID), .int(position), .int(step.wave), .time(now)])
                agentCount += try database.execute(
                    """
                    INSERT INTO rollout_agents (rollout_id, agent_id, cluster_id, state, bytes, entered_ms)
                    SELECT ?, id, cluster_id, 'pending', 0, ? FROM agents WHERE cluster_id = ?
                    """,
                    [.integer(id), .time(now), .integer(step.clusterID)])
            }
            try appendEvent(
                actor: actor, kind: .rolloutCreated, subject: EventSubject.rollout(id),
                detail: "release \(version)\(policy.rollback ? " (rollback)" : ""): \(plan.count) clusters, \(agentCount) agents; "
                    + "max unavailable \(policy.maxUnavailable), max parallel clusters \(policy.maxParallelClusters), "
                    + "canary clusters \(policy.canaryClusters), failure budget \(policy.failureBudgetPercent)%, "
                    + "health timeout \(policy.healthTimeoutSeconds) s")
            return try requireRollout(id)
        }
    }

    // MARK: - Transitions

    /// Moves a rollout to `next` if its state machine allows it (see `RolloutState`); otherwise
    /// throws `.illegalTransition`. Succeeding needs every cluster finished. Failing or aborting
    /// also aborts the clusters that had not finished, in the same transaction.
    public func transitionRollout(id: Int64, to next: RolloutState, reason: String?, actor: EventActor) throws(StoreError) -> RolloutRecord {
        try database.transaction { () throws(StoreError) -> RolloutRecord in
            let rollout = try requireRollout(id)
            guard rollout.state.canTransition(to: next) else {
                throw StoreError(
                    .illegalTransition,
                    rollout.state == next
                        ? "rollout \(id) is already \(next.rawValue)"
                        : "rollout \(id) is \(rollout.state.rawValue) and cannot become \(next.rawValue)")
            }
            if next == .succeeded || next == .partial {
                let open = try database.queryOne(
                    "SELECT count(*) FROM rollout_clusters WHERE rollout_id = ? AND state IN ('pending', 'running')",
                    [.integer(id)]) { $0.int(0) } ?? 0
                guard open == 0 else {
                    throw StoreError(.failedPrecondition, "rollout \(id) still has \(open) unfinished cluster(s) and cannot succeed")
                }
            }
            let now = clock()
            if rollout.state == .paused && next == .running {
                // The agents' deadlines did not run while paused (updated_ms is when it paused).
                try database.execute(
                    "UPDATE rollout_agents SET deadline_ms = deadline_ms + ? WHERE rollout_id = ? AND deadline_ms IS NOT NULL",
                    [.integer(max(0, now.milliseconds - rollout.updatedAt.milliseconds)), .integer(id)])
            }
            try database.execute(
                """
                UPDATE rollouts SET state = ?, state_reason = ?, updated_ms = ?,
                    started_ms = CASE WHEN ? THEN coalesce(started_ms, ?) ELSE started_ms END,
                    finished_ms = CASE WHEN ? THEN ? ELSE finished_ms END
                WHERE id = ?
                """,
                [.text(next.rawValue), .optionalText(reason), .time(now), .bool(next == .running), .time(now),
                 .bool(next.isTerminal), .time(now), .integer(id)])
            var detail = "\(rollout.state.rawValue) → \(next.rawValue)"
            if let reason { detail += ": \(reason)" }
            if next == .failed || next == .aborted {
                let aborted = try database.execute(
                    """
                    UPDATE rollout_clusters SET state = 'aborted', reason = ?, finished_ms = ?, updated_ms = ?
                    WHERE rollout_id = ? AND state IN ('pending', 'running')
                    """,
                    [.text("rollout \(next.rawValue)"), .time(now), .time(now), .integer(id)])
                if aborted > 0 { detail += " (\(aborted) unfinished cluster(s) aborted)" }
            }
            try appendEvent(actor: actor, kind: .rolloutState, subject: EventSubject.rollout(id), detail: detail)
            return try requireRollout(id)
        }
    }

    /// Moves one cluster of a rollout (see `RolloutClusterState`). Re-entering the current state
    /// changes nothing. Starting a cluster needs the rollout running.
    public func transitionRolloutCluster(
        rolloutID: Int64, clusterID: Int64, to next: RolloutClusterState, reason: String?, actor: EventActor
    ) throws(StoreError) -> RolloutClusterRecord {
        try database.transaction { () throws(StoreError) -> RolloutClusterRecord in
            let rollout = try requireRollout(rolloutID)
            guard let current = try rolloutCluster(rolloutID: rolloutID, clusterID: clusterID) else {
                throw StoreError(.notFound, "cluster \(clusterID) is not part of rollout \(rolloutID)")
            }
            if current.state == next { return current }
            guard current.state.canTransition(to: next) else {
                throw StoreError(
                    .illegalTransition,
                    "cluster \(current.prefix) of rollout \(rolloutID) is \(current.state.rawValue) and cannot become \(next.rawValue)")
            }
            if next == .running, rollout.state != .running {
                throw StoreError(.failedPrecondition, "rollout \(rolloutID) is \(rollout.state.rawValue); cluster \(current.prefix) cannot start")
            }
            let now = clock()
            try database.execute(
                """
                UPDATE rollout_clusters SET state = ?, reason = ?, updated_ms = ?,
                    started_ms = CASE WHEN ? THEN coalesce(started_ms, ?) ELSE started_ms END,
                    finished_ms = CASE WHEN ? THEN ? ELSE finished_ms END
                WHERE rollout_id = ? AND cluster_id = ?
                """,
                [.text(next.rawValue), .optionalText(reason), .time(now), .bool(next == .running), .time(now),
                 .bool(next.isTerminal), .time(now), .integer(rolloutID), .integer(clusterID)])
            try appendEvent(
                actor: actor, kind: .rolloutClusterState, subject: EventSubject.rollout(rolloutID), refs: EventRefs(cluster: current.prefix),
                detail: "cluster \(current.prefix): \(current.state.rawValue) → \(next.rawValue)" + (reason.map { ": \($0)" } ?? ""))
            guard let updated = try rolloutCluster(rolloutID: rolloutID, clusterID: clusterID) else {
                throw StoreError(.sqlite, "cluster \(clusterID) of rollout \(rolloutID) vanished after its update")
            }
            return updated
        }
    }
}
