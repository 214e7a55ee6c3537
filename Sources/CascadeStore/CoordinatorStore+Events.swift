extension CoordinatorStore {
    /// Appends one audit event (in the caller's transaction, if any).
    @discardableResult
    public func appendEvent(actor: EventActor, kind: EventKind, subject: String, detail: String) throws(StoreError) -> Int64 {
        try database.execute(
            "INSERT INTO events (time_ms, actor_role, actor_id, kind, subject, detail) VALUES (?, ?, ?, ?, ?, ?)",
            [.time(clock()), .text(actor.role), .text(actor.id), .text(kind.rawValue), .text(subject), .text(detail)])
        return database.lastInsertRowID
    }

    /// Events with an id above `afterID`, oldest first, optionally of one kind and/or subject.
    public func events(afterID: Int64 = 0, kind: EventKind? = nil, subject: String? = nil, limit: Int = 1000) throws(StoreError) -> [EventRecord] {
        try database.query(
            """
            SELECT id, time_ms, actor_role, actor_id, kind, subject, detail FROM events
            WHERE id > ?1 AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR subject = ?3)
            ORDER BY id LIMIT ?4
            """,
            [.integer(afterID), .optionalText(kind?.rawValue), .optionalText(subject), .int(max(0, limit))],
            Self.eventRecord)
    }

    /// The newest `limit` events, oldest first.
    public func recentEvents(limit: Int = 100) throws(StoreError) -> [EventRecord] {
        try database.query(
            "SELECT id, time_ms, actor_role, actor_id, kind, subject, detail FROM events ORDER BY id DESC LIMIT ?",
            [.int(max(0, limit))], Self.eventRecord
        ).reversed()
    }

    private static func eventRecord(_ row: Row) -> EventRecord {
        EventRecord(
            id: row.int64(0), time: row.timestamp(1), actor: EventActor(role: row.text(2), id: row.text(3)),
            kind: EventKind(rawValue: row.text(4)), subject: row.text(5), detail: row.text(6))
    }
}
