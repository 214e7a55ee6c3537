/// The coordinator's schema, as migrations. Tables are STRICT (SQLite ≥ 3.37): a column holds
/// its declared type or the write fails. Times are `*_ms` integers, milliseconds since 1970 UTC.
enum Schema {
    static let migrations: [Migration] = [version1, version2, version3, version4, version5, version6, version7, version8]

    static var latestVersion: Int { migrations.count }

    static let version1 = Migration(version: 1, summary: "fleet, releases, rollouts, events", sql: """
        CREATE TABLE clusters (
            id              INTEGER PRIMARY KEY,
            prefix          TEXT NOT NULL UNIQUE,
            leader_agent_id TEXT REFERENCES agents(id),
            leader_epoch    INTEGER NOT NULL DEFAULT 0 CHECK (leader_epoch >= 0),
            created_ms      INTEGER NOT NULL,
            updated_ms      INTEGER NOT NULL
        ) STRICT;

        CREATE TABLE agents (
            id               TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
            address          TEXT NOT NULL,
            port             INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
            cluster_id       INTEGER NOT NULL REFERENCES clusters(id),
            main_version     TEXT NOT NULL,
            upgrader_version TEXT NOT NULL,
            role             TEXT NOT NULL CHECK (role IN ('member', 'leader')),
            cpu_idle         REAL NOT NULL CHECK (cpu_idle BETWEEN 0 AND 1),
            mem_idle         REAL NOT NULL CHECK (mem_idle BETWEEN 0 AND 1),
            last_seen_ms     INTEGER NOT NULL,
            state            TEXT NOT NULL CHECK (state IN ('online', 'offline')),
            registered_ms    INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX agents_cluster ON agents(cluster_id);

        CREATE TABLE releases (
            version     TEXT PRIMARY KEY CHECK (length(version) BETWEEN 1 AND 128),
            name        TEXT NOT NULL,
            manifest    BLOB NOT NULL,
            signature   BLOB NOT NULL,
            key_id      TEXT NOT NULL,
            blob_digest TEXT NOT NULL CHECK (length(blob_digest) = 64),
            size        INTEGER NOT NULL CHECK (size >= 0),
            chunk_size  INTEGER NOT NULL CHECK (chunk_size > 0),
            chunk_count INTEGER NOT NULL CHECK (chunk_count >= 0),
            created_ms  INTEGER NOT NULL,
            stored_ms   INTEGER NOT NULL,
            complete    INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1))
        ) STRICT;

        -- Chunks of a release still being pushed (resumable); deleted when the release completes.
        CREATE TABLE release_chunks (
            release_version TEXT NOT NULL REFERENCES releases(version) ON DELETE CASCADE,
            chunk_index     INTEGER NOT NULL CHECK (chunk_index >= 0),
            received_ms     INTEGER NOT NULL,
            PRIMARY KEY (release_version, chunk_index)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE rollouts (
            id                     INTEGER PRIMARY KEY,
            release_version        TEXT NOT NULL REFERENCES releases(version),
            clusters_json          TEXT NOT NULL,
            max_unavailable        INTEGER NOT NULL CHECK (max_unavailable >= 1),
            max_parallel_clusters  INTEGER NOT NULL CHECK (max_parallel_clusters >= 1),
            canary_clusters        INTEGER NOT NULL CHECK (canary_clusters >= 0),
            failure_budget_percent INTEGER NOT NULL CHECK (failure_budget_percent BETWEEN 0 AND 100),
            health_timeout_s       INTEGER NOT NULL CHECK (health_timeout_s >= 1),
            rollback               INTEGER NOT NULL CHECK (rollback IN (0, 1)),
            state                  TEXT NOT NULL
                CHECK (state IN ('requested', 'running', 'paused', 'succeeded', 'failed', 'aborted')),
            state_reason           TEXT,
            created_by_role        TEXT NOT NULL,
            created_by_id          TEXT NOT NULL,
            created_ms             INTEGER NOT NULL,
            started_ms             INTEGER,
            finished_ms            INTEGER,
            updated_ms             INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX rollouts_state ON rollouts(state);

        CREATE TABLE rollout_clusters (
            rollout_id  INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
            cluster_id  INTEGER NOT NULL REFERENCES clusters(id),
            position    INTEGER NOT NULL CHECK (position >= 0),
            wave        INTEGER NOT NULL CHECK (wave >= 0),
            state       TEXT NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'aborted')),
            reason      TEXT,
            started_ms  INTEGER,
            finished_ms INTEGER,
            updated_ms  INTEGER NOT NULL,
            PRIMARY KEY (rollout_id, cluster_id),
            UNIQUE (rollout_id, position)
        ) STRICT;

        CREATE TABLE rollout_agents (
            rollout_id INTEGER NOT NULL,
            agent_id   TEXT NOT NULL REFERENCES agents(id),
            cluster_id INTEGER NOT NULL,
            state      TEXT NOT NULL CHECK (state IN
                ('pending', 'instructed', 'downloading', 'installing', 'healthy', 'failed', 'rolled-back')),
            bytes      INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
            entered_ms INTEGER NOT NULL,
            deadline_ms INTEGER,
            error      TEXT,
            PRIMARY KEY (rollout_id, agent_id),
            FOREIGN KEY (rollout_id, cluster_id) REFERENCES rollout_clusters(rollout_id, cluster_id) ON DELETE CASCADE
        ) STRICT;
        CREATE INDEX rollout_agents_cluster ON rollout_agents(rollout_id, cluster_id, state);
        CREATE INDEX rollout_agents_agent ON rollout_agents(agent_id);

        -- The audit log: who (from the peer's certificate) did what, when. Append-only.
        CREATE TABLE events (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            time_ms    INTEGER NOT NULL,
            actor_role TEXT NOT NULL,
            actor_id   TEXT NOT NULL,
            kind       TEXT NOT NULL,
            subject    TEXT NOT NULL,
            detail     TEXT NOT NULL
        ) STRICT;
        """)

    /// Version 2: the timeout sweep and the audit-log filters stop scanning whole tables
    /// (20,000 agents per rollout, an event per transition).
    static let version2 = Migration(version: 2, summary: "indexes for deadlines and event filters", sql: """
        CREATE INDEX rollout_agents_deadline ON rollout_agents(deadline_ms) WHERE deadline_ms IS NOT NULL;
        CREATE INDEX events_subject ON events(subject, id);
        CREATE INDEX events_kind ON events(kind, id);
        """)

    /// Version 3: who pushed each release (the operator's id from their certificate); empty
    /// for releases pushed before.
    static let version3 = Migration(version: 3, summary: "who pushed each release", sql: """
        ALTER TABLE releases ADD COLUMN pushed_by TEXT NOT NULL DEFAULT '';
        """)

    /// Version 4: a rollout that goes down keeps the operator's signed downgrade authorisation
    /// (opaque bytes the agents verify); empty for every other rollout.
    static let version4 = Migration(version: 4, summary: "downgrade authorisations of rollouts", sql: """
        ALTER TABLE rollouts ADD COLUMN downgrade BLOB NOT NULL DEFAULT x'';
        """)

    /// Version 5: a release found damaged where it rests says why (and is incomplete until a
    /// re-push repairs it); a deleted release that rollouts still refer to stays as a tombstone.
    static let version5 = Migration(version: 5, summary: "damaged and deleted releases", sql: """
        ALTER TABLE releases ADD COLUMN damage TEXT NOT NULL DEFAULT '';
        ALTER TABLE releases ADD COLUMN deleted_ms INTEGER;
        """)

    /// Version 6: a rollout may end `partial` (succeeded with agents failed or rolled back
    /// within its failure budget). SQLite cannot alter a CHECK constraint, and rebuilding
    /// `rollouts` would cascade-delete its clusters and agents, so the table's definition is
    /// widened in place: every existing row satisfies the wider CHECK, which is the case the
    /// SQLite manual allows for a direct schema edit. `RESET` reloads the schema on this
    /// connection; the migrator bumps the schema cookie for any other.
    static let version6 = Migration(version: 6, summary: "rollouts may end partial", rewritesSchema: true, sql: """
        PRAGMA writable_schema = ON;
        UPDATE sqlite_schema
            SET sql = replace(sql, '''paused'', ''succeeded'', ''failed'', ''aborted'')',
                                   '''paused'', ''succeeded'', ''partial'', ''failed'', ''aborted'')')
            WHERE type = 'table' AND name = 'rollouts';
        PRAGMA writable_schema = RESET;
        """)

    /// Version 7: every event keeps the rollout, cluster and agent it is about in columns of
    /// their own, so the audit log's filters find an event by any of them (a cluster's rollout
    /// state is about the rollout and the cluster). Older rows get them from their subject, and
    /// from their detail where that was the only place (see CoordinatorStore.appendEvent).
    static let version7 = Migration(version: 7, summary: "the rollout, cluster and agent of each event", sql: """
        ALTER TABLE events ADD COLUMN rollout_id INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE events ADD COLUMN cluster TEXT NOT NULL DEFAULT '';
        ALTER TABLE events ADD COLUMN agent TEXT NOT NULL DEFAULT '';
        UPDATE events SET rollout_id = CAST(substr(subject, 9) AS INTEGER) WHERE subject GLOB 'rollout:*';
        UPDATE events SET cluster = substr(subject, 9) WHERE subject GLOB 'cluster:*';
        UPDATE events SET agent = substr(subject, 7) WHERE subject GLOB 'agent:*';
        UPDATE events SET cluster = substr(detail, 9, instr(detail, ': ') - 9)
            WHERE kind = 'rollout.cluster-state' AND detail GLOB 'cluster *: *';
        UPDATE events SET agent = substr(detail, 7, instr(detail, ': ') - 7)
            WHERE kind IN ('rollout.agent-state', 'rollout.record-corrected') AND detail GLOB 'agent *: *';
        CREATE INDEX events_rollout ON events(rollout_id, id);
        CREATE INDEX events_cluster ON events(cluster, id);
        CREATE INDEX events_agent ON events(agent, id);
        """)

    /// Version 8 (services.md): the host name an agent registers with (for people); a rollout's
    /// client token, so a retried `StartRollout` finds the rollout its first call created, even
    /// across a restart; and the lowest version its agents ran when it was requested. Empty
    /// for rows from before.
    static let version8 = Migration(version: 8, summary: "agent host names, rollout client tokens and from-versions", sql: """
        ALTER TABLE agents ADD COLUMN hostname TEXT NOT NULL DEFAULT '';
        ALTER TABLE rollouts ADD COLUMN client_token TEXT NOT NULL DEFAULT '';
        ALTER TABLE rollouts ADD COLUMN from_version TEXT NOT NULL DEFAULT '';
        CREATE UNIQUE INDEX rollouts_client_token ON rollouts(created_by_id, client_token) WHERE client_token <> '';
        """)
}
