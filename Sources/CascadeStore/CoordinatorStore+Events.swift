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
    /// cluster (prefix), agent and time (at or after `since`); the filters combine with AND.
    public func events(
        afterID: Int64 = 0, kind: EventKind? = nil, subject: String? = nil, rolloutID: Int64? = nil, cluster: String? = nil,
        agentID: String? = nil, since: Timestamp? = nil, limit: Int = 1000
    ) throws(StoreError) -> [EventRecord] {
        try database.query(
            """
            SELECT \(Self.eventColumns) FROM events
            WHERE id > ?1 AND \(Self.eventFilter(from: 2))
            ORDER BY id LIMIT ?8
            """,
            [.integer(afterID)] + Self.filterValues(kind, subject, rolloutID, cluster, agentID, since) + [.int(max(0, limit))],
            Self.eventRecord)
    }

    /// The newest `limit` events that pass the same filters, oldest first: what an operator
    /// asking for "the last N" wants (services.md §3.8, ListEvents without `after_id`).
    public func recentEvents(
        limit: Int = 100, kind: EventKind? = nil, subject: String? = nil, rolloutID: Int64? = nil, cluster: String? = nil,
        agentID: String? = nil, since: Timestamp? = nil
    ) throws(StoreError) -> [EventRecord] {
        try database.query(
            """
            SELECT \(Self.eventColumns) FROM events
            WHERE \(Self.eventFilter(from: 1))
            ORDER BY id DESC LIMIT ?7
            """,
            Self.filterValues(kind, subject, rolloutID, cluster, agentID, since) + [.int(max(0, limit))],
            Self.eventRecord
        ).reversed()
    }

    /// The filters of both reads, as parameters ?first … ?first+5 bound to `filterValues`;
    /// a NULL turns a filter off.
    private static func eventFilter(from first: Int) -> String {
        let (k, s, r, c, a, t) = (first, first + 1, first + 2, first + 3, first + 4, first + 5)
        return "(?\(k) IS NULL OR kind = ?\(k)) AND (?\(s) IS NULL OR subject = ?\(s)) AND (?\(r) IS NULL OR rollout_id = ?\(r))"
            + " AND (?\(c) IS NULL OR cluster = ?\(c)) AND (?\(a) IS NULL OR agent = ?\(a)) AND time_ms >= ?\(t)"
    }

    private static func filterValues(
        _ kind: EventKind?, _ subject: String?, _ rolloutID: Int64?, _ cluster: String?, _ agentID: String?, _ since: Timestamp?
    ) -> [SQLValue] {
        [.optionalText(kind?.rawValue), .optionalText(subject), rolloutID.map { .integer($0) } ?? .null,
         .optionalText(cluster), .optionalText(agentID), .integer(since?.milliseconds ?? 0)]
    }

    private static let eventColumns = "id, time_ms, actor_role, actor_id, kind, subject, detail, rollout_id, cluster, agent"

    private static func eventRecord(_ row: Row) -> EventRecord {
        EventRecord(
            id: row.int64(0), time: row.timestamp(1), actor: EventActor(role: row.text(2), id: row.text(3)),
            kind: EventKind(rawValue: row.text(4)), subject: row.text(5), detail: row.text(6),
            rolloutID: row.int64(7), cluster: row.text(8), agentID: row.text(9))
    }
}
