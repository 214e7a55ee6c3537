extension CoordinatorStore {
    static let agentColumns = """
        a.id, a.address, a.port, a.cluster_id, c.prefix, a.main_version, a.upgrader_version, a.role,
        a.cpu_idle, a.mem_idle, a.last_seen_ms, a.state, a.registered_ms, a.hostname
        FROM agents a JOIN clusters c ON c.id = a.cluster_id
        """

    func agentRecord(_ row: Row, now: Timestamp) throws(StoreError) -> AgentRecord {
        let connection = try row.value(11, as: AgentConnection.self)
        let lastSeen = row.timestamp(10)
        let cpu = row.double(8)
        let memory = row.double(9)
        return AgentRecord(
            id: row.text(0), address: row.text(1), port: row.int(2), clusterID: row.int64(3), clusterPrefix: row.text(4),
            mainVersion: row.text(5), upgraderVersion: row.text(6), role: try row.value(7, as: AgentRole.self),
            cpuIdle: cpu, memoryIdle: memory, lastSeen: lastSeen, connection: connection, registeredAt: row.timestamp(12),
            hostname: row.text(13), isLive: isLive(connection: connection, lastSeen: lastSeen, now: now),
            weight: configuration.weights.weight(cpuIdle: cpu, memoryIdle: memory))
    }

    func isLive(connection: AgentConnection, lastSeen: Timestamp, now: Timestamp) -> Bool {
        connection == .online && now.since(lastSeen) <= configuration.livenessTimeout
    }

    // MARK: - Reads

    public func agent(id: String) throws(StoreError) -> AgentRecord? {
        let now = clock()
        return try database.queryOne("SELECT \(Self.agentColumns) WHERE a.id = ?", [.text(id)]) { (row: Row) throws(StoreError) in
            try agentRecord(row, now: now)
        }
    }

    /// Every agent, by id.
    public func agents() throws(StoreError) -> [AgentRecord] {
        let now = clock()
        return try database.query("SELECT \(Self.agentColumns) ORDER BY a.id") { (row: Row) throws(StoreError) in
            try agentRecord(row, now: now)
        }
    }

    /// The agents of one cluster, by id.
    public func agents(inCluster clusterID: Int64) throws(StoreError) -> [AgentRecord] {
        let now = clock()
        return try database.query("SELECT \(Self.agentColumns) WHERE a.cluster_id = ? ORDER BY a.id", [.integer(clusterID)]) {
            (row: Row) throws(StoreError) in try agentRecord(row, now: now)
        }
    }

    /// The agent's current cluster, role and leader.
    public func assignment(agentID: String) throws(StoreError) -> AgentAssignment {
        guard let agent = try agent(id: agentID) else {
            throw StoreError(.notFound, "no agent '\(agentID)' is registered")
        }
        guard let cluster = try cluster(id: agent.clusterID) else {
            throw StoreError(.corrupt, "agent '\(agentID)' refers to a missing cluster \(agent.clusterID)")
        }
        let leader = try cluster.leaderID.flatMap { (id: String) throws(StoreError) in try self.agent(id: id) }
        return AgentAssignment(agent: agent, cluster: cluster, leader: leader, leaderChanges: [])
    }

    // MARK: - Register and heartbeat

    /// Records an agent's registration: creates or updates its row, puts it in the cluster of its
    /// subnet (creating the cluster), and elects a leader where the agent's arrival or move
    /// leaves a cluster without a live one. An agent that re-registers keeps its leadership.
    public func registerAgent(_ registration: AgentRegistration, actor: EventActor? = nil) throws(StoreError) -> AgentAssignment {
        try Self.validate(registration)
        let prefix = try SubnetPrefix(address: registration.address, lengths: configuration.prefixLengths).description
        let actor = actor ?? .agent(registration.id)
        return try database.transaction { () throws(StoreError) -> AgentAssignment in
            let now = clock()
            let clusterID = try ensureCluster(prefix: prefix, actor: actor)
            let previous = try agent(id: registration.id)
            var changes: [LeaderChange] = []
            let keepsLeadership = previous?.clusterID == clusterID && previous?.role == .leader
            try database.execute(
                """
                INSERT INTO agents (id, address, port, cluster_id, main_version, upgrader_version, role,
                                    cpu_idle, mem_idle, last_seen_ms, state, registered_ms, hostname)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'online', ?10, ?11)
                ON CONFLICT (id) DO UPDATE SET
                    address = ?2, port = ?3, cluster_id = ?4, main_version = ?5, upgrader_version = ?6, role = ?7,
                    cpu_idle = ?8, mem_idle = ?9, last_seen_ms = ?10, state = 'online', hostname = ?11
                """,
                [.text(registration.id), .text(registration.address), .int(registration.port), .integer(clusterID),
                 .text(registration.mainVersion), .text(registration.upgraderVersion),
                 .text((keepsLeadership ? AgentRole.leader : .member).rawValue),
                 .real(registration.cpuIdle), .real(registration.memoryIdle), .time(now),
                 .text(Self.cut(registration.hostname, toBytes: AgentRegistration.maxHostnameBytes))])
            if let previous {
                if previous.clusterID != clusterID, previous.role == .leader,
                   let change = try electIfLeaderLost(clusterID: previous.clusterID, actor: actor) {
                    changes.append(change)
                }
                let moved = previous.clusterID != clusterID || previous.address != registration.address || previous.port != registration.port
                if moved || previous.mainVersion != registration.mainVersion || previous.upgraderVersion != registration.upgraderVersion {
                    try appendEvent(
                        actor: actor, kind: .agentChanged, subject: EventSubject.agent(registration.id), refs: EventRefs(cluster: prefix),
                        detail: "re-registered at \(registration.address):\(registration.port) in \(prefix), "
                            + "main \(registration.mainVersion), upgrader \(registration.upgraderVersion)"
                            + (previous.clusterID != clusterID ? " (was in \(previous.clusterPrefix))" : ""))
                }
            } else {
                try appendEvent(
                    actor: actor, kind: .agentRegistered, subject: EventSubject.agent(registration.id), refs: EventRefs(cluster: prefix),
                    detail: "registered at \(registration.address):\(registration.port) in \(prefix), "
                        + "main \(registration.mainVersion), upgrader \(registration.upgraderVersion)")
            }
            if let change = try electIfLeaderLost(clusterID: clusterID, actor: actor) { changes.append(change) }
            var result = try assignment(agentID: registration.id)
            result.leaderChanges = changes
            return result
        }
    }

    /// Registers several agents in one transaction: one fsync for the lot, as when a fleet
    /// reconnects at once. Each registration runs in a savepoint of its own, so one that is
    /// refused (a bad address, say) is rolled back alone and reported in its slot while the
    /// others commit together; a leader also gets its members' ids. Throws, with nothing
    /// committed, only if the batch as a whole fails (the commit, or an error that ends the
    /// transaction).
    public func registerAgents(_ registrations: [AgentRegistration]) throws(StoreError) -> [Result<RegisteredAgent, StoreError>] {
        try database.transaction { () throws(StoreError) -> [Result<RegisteredAgent, StoreError>] in
            var results: [Result<RegisteredAgent, StoreError>] = []
            results.reserveCapacity(registrations.count)
            for registration in registrations {
                do throws(StoreError) {
                    let assignment = try registerAgent(registration)
                    // Only a leader is told its members (reading them costs a cluster scan).
                    let members = assignment.role == .leader ? try agents(inCluster: assignment.cluster.id).map(\.id) : []
                    results.append(.success(RegisteredAgent(assignment: assignment, memberIDs: members)))
                } catch {
                    // SQLite ends the transaction itself after some errors (a full disk, an I/O
                    // error): then nothing of the batch can commit.
                    guard database.isInTransaction else { throw error }
                    results.append(.failure(error))
                }
            }
            return results
        }
    }

    /// Records one heartbeat: idle ratios, versions if given, last seen, online. Never moves a
    /// live leader; elects one only if the cluster's leader is not live.
    public func recordHeartbeat(_ heartbeat: Heartbeat, actor: EventActor? = nil) throws(StoreError) -> AgentAssignment {
        try database.transaction { () throws(StoreError) -> AgentAssignment in
            let result = try recordHeartbeats([heartbeat], actor: actor ?? .agent(heartbeat.agentID))
            guard result.unknownAgentIDs.isEmpty else {
                throw StoreError(.notFound, "no agent '\(heartbeat.agentID)' is registered")
            }
            var assignment = try assignment(agentID: heartbeat.agentID)
            assignment.leaderChanges = result.leaderChanges
            return assignment
        }
    }

    /// Records a leader's report for its members in one transaction (one fsync for the batch).
    public func recordHeartbeats(_ heartbeats: [Heartbeat], actor: EventActor) throws(StoreError) -> HeartbeatBatchResult {
        for heartbeat in heartbeats {
            try Self.validateRatios(heartbeat.cpuIdle, heartbeat.memoryIdle, agent: heartbeat.agentID)
        }
        return try database.transaction { () throws(StoreError) -> HeartbeatBatchResult in
            let now = clock()
            var unknown: [String] = []
            var clusters: [Int64] = []
            for heartbeat in heartbeats {
                guard let previous = try agent(id: heartbeat.agentID) else {
                    unknown.append(heartbeat.agentID)
                    continue
                }
                try database.execute(
                    """
                    UPDATE agents SET cpu_idle = ?, mem_idle = ?, last_seen_ms = ?, state = 'online',
                        main_version = coalesce(?, main_version), upgrader_version = coalesce(?, upgrader_version)
                    WHERE id = ?
                    """,
                    [.real(heartbeat.cpuIdle), .real(heartbeat.memoryIdle), .time(now),
                     .optionalText(heartbeat.mainVersion), .optionalText(heartbeat.upgraderVersion), .text(heartbeat.agentID)])
                let main = heartbeat.mainVersion ?? previous.mainVersion
                let upgrader = heartbeat.upgraderVersion ?? previous.upgraderVersion
                if main != previous.mainVersion || upgrader != previous.upgraderVersion {
                    try appendEvent(
                        actor: actor, kind: .agentChanged, subject: EventSubject.agent(heartbeat.agentID),
                        refs: EventRefs(cluster: previous.clusterPrefix),
                        detail: "now main \(main), upgrader \(upgrader) (was main \(previous.mainVersion), upgrader \(previous.upgraderVersion))")
                }
                if !clusters.contains(previous.clusterID) { clusters.append(previous.clusterID) }
            }
            var changes: [LeaderChange] = []
            for clusterID in clusters {
                if let change = try electIfLeaderLost(clusterID: clusterID, actor: actor) { changes.append(change) }
            }
            return HeartbeatBatchResult(leaderChanges: changes, unknownAgentIDs: unknown)
        }
    }

    /// Marks an agent offline (its session ended). If it led its cluster, the best live member
    /// becomes the acting leader in the same transaction.
    @discardableResult
    public func markAgentOffline(id: String, reason: String, actor: EventActor = .coordinator()) throws(StoreError) -> LeaderChange? {
        try database.transaction { () throws(StoreError) -> LeaderChange? in
            guard let agent = try agent(id: id) else { throw StoreError(.notFound, "no agent '\(id)' is registered") }
            guard agent.connection == .online else { return nil }
            try database.execute("UPDATE agents SET state = 'offline' WHERE id = ?", [.text(id)])
            try appendEvent(
                actor: actor, kind: .agentOffline, subject: EventSubject.agent(id), refs: EventRefs(cluster: agent.clusterPrefix), detail: reason)
            return try electIfLeaderLost(clusterID: agent.clusterID, actor: actor)
        }
    }

    // MARK: - Validation

    static func validate(_ registration: AgentRegistration) throws(StoreError) {
        guard (1...255).contains(registration.id.utf8.count) else {
            throw StoreError(.invalidArgument, "an agent id must be 1...255 bytes")
        }
        guard (0...65535).contains(registration.port) else {
            throw StoreError(.invalidArgument, "agent '\(registration.id)' reported port \(registration.port), outside 0...65535")
        }
        // Only the main version is needed (it decides what a rollout does to the agent); an
        // older agent that sends no upgrader version is recorded with an empty one (services.md §3.1).
        guard !registration.mainVersion.isEmpty else {
            throw StoreError(.invalidArgument, "agent '\(registration.id)' reported an empty main version")
        }
        try validateRatios(registration.cpuIdle, registration.memoryIdle, agent: registration.id)
    }

    /// `text` cut to at most `limit` UTF-8 bytes, at a character boundary.
    static func cut(_ text: String, toBytes limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var result = ""
        var used = 0
        for character in text {
            used += character.utf8.count
            guard used <= limit else { break }
            result.append(character)
        }
        return result
    }

    static func validateRatios(_ cpu: Double, _ memory: Double, agent: String) throws(StoreError) {
        guard (0...1).contains(cpu), (0...1).contains(memory) else {
            throw StoreError(.invalidArgument, "agent '\(agent)' reported idle ratios cpu \(cpu), memory \(memory); both must be in [0, 1]")
        }
    }
}
