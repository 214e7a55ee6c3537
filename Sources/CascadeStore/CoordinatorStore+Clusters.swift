extension CoordinatorStore {
    private static let clusterColumns = "id, prefix, leader_agent_id, leader_epoch, created_ms, updated_ms FROM clusters"

    private static func clusterRecord(_ row: Row) -> ClusterRecord {
        ClusterRecord(
            id: row.int64(0), prefix: row.text(1), leaderID: row.optionalText(2), leaderEpoch: row.int64(3),
            createdAt: row.timestamp(4), updatedAt: row.timestamp(5))
    }

    public func cluster(id: Int64) throws(StoreError) -> ClusterRecord? {
        try database.queryOne("SELECT \(Self.clusterColumns) WHERE id = ?", [.integer(id)], Self.clusterRecord)
    }

    /// The cluster with canonical prefix `prefix` (e.g. "127.0.1.0/24").
    public func cluster(prefix: String) throws(StoreError) -> ClusterRecord? {
        try database.queryOne("SELECT \(Self.clusterColumns) WHERE prefix = ?", [.text(prefix)], Self.clusterRecord)
    }

    /// Every cluster, by id (creation order).
    public func clusters() throws(StoreError) -> [ClusterRecord] {
        try database.query("SELECT \(Self.clusterColumns) ORDER BY id", [], Self.clusterRecord)
    }

    /// The id of the cluster for `prefix`, created (with an event) if new.
    func ensureCluster(prefix: String, actor: EventActor) throws(StoreError) -> Int64 {
        if let id = try database.queryOne("SELECT id FROM clusters WHERE prefix = ?", [.text(prefix)], { $0.int64(0) }) {
            return id
        }
        let now = clock()
        try database.execute(
            "INSERT INTO clusters (prefix, leader_epoch, created_ms, updated_ms) VALUES (?, 0, ?, ?)",
            [.text(prefix), .time(now), .time(now)])
        let id = database.lastInsertRowID
        try appendEvent(actor: actor, kind: .clusterCreated, subject: EventSubject.cluster(prefix), detail: "cluster \(id) for subnet \(prefix)")
        return id
    }

    // MARK: - Leaders

    /// Elects a leader for the cluster if its current one is not a live member (lost, offline,
    /// moved away, or there is none). A live leader is never replaced here.
    func electIfLeaderLost(clusterID: Int64, actor: EventActor) throws(StoreError) -> LeaderChange? {
        guard let cluster = try cluster(id: clusterID) else {
            throw StoreError(.notFound, "no cluster \(clusterID)")
        }
        let members = try agents(inCluster: clusterID)
        let candidates = members.map { LeaderCandidate(id: $0.id, weight: $0.weight, isLive: $0.isLive) }
        let current = cluster.leaderID
        let currentMember = members.first { $0.id == current }
        var next = LeaderElection.decide(current: current, candidates: candidates)
        // A leader that left the cluster cannot stay its leader, even with no one to replace it.
        if next != nil, next == current, currentMember == nil { next = nil }
        guard next != current else { return nil }
        let reason: String
        if let current {
            if let currentMember {
                reason = currentMember.connection == .offline
                    ? "leader \(current) is offline"
                    : "leader \(current) not heard from since \(currentMember.lastSeen)"
            } else {
                reason = "leader \(current) left the cluster"
            }
        } else {
            reason = "the cluster had no leader"
        }
        return try setLeader(cluster: cluster, to: next, reason: reason, actor: actor)
    }

    /// Makes `leaderID` the cluster's leader: bumps the epoch, fixes both agents' roles and
    /// records the event, in the caller's transaction.
    private func setLeader(cluster: ClusterRecord, to leaderID: String?, reason: String, actor: EventActor) throws(StoreError) -> LeaderChange {
        let epoch = cluster.leaderEpoch + 1
        try database.execute(
            "UPDATE clusters SET leader_agent_id = ?, leader_epoch = ?, updated_ms = ? WHERE id = ?",
            [.optionalText(leaderID), .integer(epoch), .time(clock()), .integer(cluster.id)])
        try database.execute(
            "UPDATE agents SET role = 'member' WHERE cluster_id = ? AND role = 'leader' AND id IS NOT ?",
            [.integer(cluster.id), .optionalText(leaderID)])
        if let leaderID {
            try database.execute("UPDATE agents SET role = 'leader' WHERE id = ?", [.text(leaderID)])
        }
        try appendEvent(
            actor: actor, kind: .leaderChanged, subject: EventSubject.cluster(cluster.prefix),
            detail: "leader \(cluster.leaderID ?? "none") → \(leaderID ?? "none"), epoch \(epoch): \(reason)")
        return LeaderChange(
            clusterID: cluster.id, prefix: cluster.prefix, previousLeaderID: cluster.leaderID, leaderID: leaderID,
            epoch: epoch, reason: reason)
    }

    /// An operator moves a cluster's leadership to a live member. Moving it to the current
    /// leader changes nothing and returns nil.
    @discardableResult
    public func moveLeader(clusterID: Int64, to agentID: String, reason: String, actor: EventActor) throws(StoreError) -> LeaderChange? {
        try database.transaction { () throws(StoreError) -> LeaderChange? in
            guard let cluster = try cluster(id: clusterID) else { throw StoreError(.notFound, "no cluster \(clusterID)") }
            guard let agent = try agent(id: agentID) else { throw StoreError(.notFound, "no agent '\(agentID)' is registered") }
            guard agent.clusterID == clusterID else {
                throw StoreError(.failedPrecondition, "agent '\(agentID)' is in \(agent.clusterPrefix), not in \(cluster.prefix)")
            }
            guard agent.isLive else {
                throw StoreError(.failedPrecondition, "agent '\(agentID)' is not live and cannot lead \(cluster.prefix)")
            }
            guard cluster.leaderID != agentID else { return nil }
            return try setLeader(cluster: cluster, to: agentID, reason: "moved by \(actor): \(reason)", actor: actor)
        }
    }

    /// Replaces every leader that is no longer live (the periodic sweep that notices leaders
    /// whose heartbeats stopped without their session ending). One transaction.
    public func reconcileLeaders(actor: EventActor = .coordinator()) throws(StoreError) -> [LeaderChange] {
        try database.transaction { () throws(StoreError) -> [LeaderChange] in
            // Only clusters whose leader is missing, elsewhere, offline or silent need a look.
            let oldestLive = clock() - configuration.livenessTimeout
            let suspects = try database.query(
                """
                SELECT c.id FROM clusters c LEFT JOIN agents a ON a.id = c.leader_agent_id AND a.cluster_id = c.id
                WHERE a.id IS NULL OR a.state <> 'online' OR a.last_seen_ms < ? ORDER BY c.id
                """,
                [.time(oldestLive)]) { $0.int64(0) }
            var changes: [LeaderChange] = []
            for clusterID in suspects {
                if let change = try electIfLeaderLost(clusterID: clusterID, actor: actor) { changes.append(change) }
            }
            return changes
        }
    }
}
