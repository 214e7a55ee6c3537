extension CoordinatorStore {
    /// Appends one audit event (in the caller's transaction, if any). The rollout, cluster and
    /// agent it is about come from `subject` ("rollout:3", "cluster:10.0.1.0/24", "agent:a1")
    /// and from `refs`, and are kept in their own columns so each filter finds the event.
    @discardableResult
    public func appendEvent(
        actor: EventActor, kind: EventKind, subject: String, refs: EventRefs = EventRefs(), detail: String
    ) throws(StoreError) -> Int64 {
        let parts = subject.split(separator: ":", maxSplits: 1).map(String.init)
        let (what, name) = (parts.first ?? "", parts.count > 1 ? parts[1] : "")
        let rollout = refs.rolloutID ?? (what == "rollout" ? Int64(name) : nil) ?? 0
        let cluster = refs.cluster ?? (what == "cluster" ? name : "")
        let agent = refs.agentID ?? (what == "agent" ? name : "")
        try database.execute(
            """
            INSERT INTO events (time_ms, actor_role, actor_id, kind, subject, detail, rollout_id, cluster, agent)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [.time(clock()), .text(actor.role), .text(actor.id), .text(kind.rawValue), .text(subject), .text(detail),
             .integer(rollout), .text(cluster), .text(agent)])
        return database.lastInsertRowID
    }

    /// Events with an id above `afterID`, oldest first, filtered by kind, subject, rollout,
    /// cluster (prefix) and agent; the filters combine with AND.
    public func events(
        afterID: Int64 = 0, kind: EventKind? = nil, subject: String? = nil, rolloutID: Int64? = nil, cluster: String? = nil,
        agentID: String? = nil, limit: Int = 1000
    ) throws(StoreError) -> [EventRecord] {
        try database.query(
            """
            SELECT \(Self.eventColumns) FROM events
            WHERE id > ?1 AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR subject = ?3)
                AND (?5 IS NULL OR rollout_id = ?5) AND (?6 IS NULL OR cluster = ?6) AND (?7 IS NULL OR agent = ?7)
            ORDER BY id LIMIT ?4
            """,
            [.integer(afterID), .optionalText(kind?.rawValue), .optionalText(subject), .int(max(0, limit)),
             rolloutID.map { .integer($0) } ?? .null, .optionalText(cluster), .optionalText(agentID)],
            Self.eventRecord)
    }

    /// The newest `limit` events, oldest first.
    public func recentEvents(limit: Int = 100) throws(StoreError) -> [EventRecord] {
        try database.query(
            "SELECT \(Self.eventColumns) FROM events ORDER BY id DESC LIMIT ?",
            [.int(max(0, limit))], Self.eventRecord
        ).reversed()
    }

    private static let eventColumns = "id, time_ms, actor_role, actor_id, kind, subject, detail, rollout_id, cluster, agent"

    private static func eventRecord(_ row: Row) -> EventRecord {
        EventRecord(
            id: row.int64(0), time: row.timestamp(1), actor: EventActor(role: row.text(2), id: row.text(3)),
            kind: EventKind(rawValue: row.text(4)), subject: row.text(5), detail: row.text(6),
            rolloutID: row.int64(7), cluster: row.text(8), agentID: row.text(9))
    }
}
