@testable import CascadeStore
import CascadeTestSupport
import Testing

@Suite("Schema migrations")
struct MigrationTests {
    func names(_ database: Database, type: String) throws -> [String] {
        try database.query("SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%' ORDER BY name", [.text(type)]) {
            $0.text(0)
        }
    }

    @Test("an empty database migrates to the newest version with every table and index")
    func fromEmpty() throws {
        let directory = try TemporaryDirectory()
        let database = try Database(path: directory.file("db"))
        #expect(try Migrator.version(of: database) == 0)
        let result = try Migrator.migrate(database)
        #expect(result.from == 0)
        #expect(result.to == 8)
        #expect(Schema.latestVersion == 8)
        #expect(try names(database, type: "table") == [
            "agents", "clusters", "events", "release_chunks", "releases", "rollout_agents", "rollout_clusters", "rollouts",
        ])
        #expect(try names(database, type: "index") == [
            "agents_cluster", "events_agent", "events_cluster", "events_kind", "events_rollout", "events_subject",
            "rollout_agents_agent", "rollout_agents_cluster",
            "rollout_agents_deadline", "rollouts_client_token", "rollouts_state",
        ])
        // Migrating again is a no-op.
        #expect(try Migrator.migrate(database) == (8, 8))
    }

    @Test("a version 1 database with rows migrates to the newest version and keeps its rows")
    func fromPrevious() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db")
        do {
            let database = try Database(path: path)
            #expect(try Migrator.migrate(database, to: 1) == (0, 1))
            #expect(try !names(database, type: "index").contains("rollout_agents_deadline"))
            try database.execute("INSERT INTO clusters (prefix, created_ms, updated_ms) VALUES ('10.0.0.0/24', 1, 1)")
            try database.execute("""
                INSERT INTO agents (id, address, port, cluster_id, main_version, upgrader_version, role, cpu_idle, mem_idle,
                                    last_seen_ms, state, registered_ms)
                VALUES ('a1', '10.0.0.5', 7000, 1, '1.0', '1.0', 'member', 0.5, 0.25, 10, 'online', 10)
                """)
            try database.execute(
                "INSERT INTO events (time_ms, actor_role, actor_id, kind, subject, detail) VALUES (5, 'operator', 'o', 'k', 's', 'd')")
            try database.execute("""
                INSERT INTO releases (version, name, manifest, signature, key_id, blob_digest, size, chunk_size, chunk_count,
                                      created_ms, stored_ms, complete)
                VALUES ('1.0', 'cascade-agent', x'00', x'00', 'k', '\(String(repeating: "ab", count: 32))', 1, 1, 1, 1, 1, 1)
                """)
        }
        let store = try CoordinatorStore(path: path)
        #expect(try store.schemaVersion == 8)
        #expect(try names(store.database, type: "index").contains("rollout_agents_deadline"))
        let agent = try #require(try store.agent(id: "a1"))
        #expect(agent.clusterPrefix == "10.0.0.0/24")
        #expect(agent.memoryIdle == 0.25)
        // An agent registered before version 8 has no host name on record.
        #expect(agent.hostname == "")
        #expect(try store.events().map(\.detail) == ["d"])
        // A release stored before version 3 has no pusher on record.
        #expect(try store.release(version: "1.0")?.pushedBy == "")
        #expect(try store.release(version: "1.0")?.isComplete == true)
        // The deadline sweep's query uses the new index.
        let plan = try store.database.query(
            "EXPLAIN QUERY PLAN SELECT agent_id FROM rollout_agents WHERE deadline_ms IS NOT NULL AND deadline_ms <= 5"
        ) { $0.text(3) }
        #expect(plan.contains { $0.contains("rollout_agents_deadline") })
    }

    @Test("version 6 widens the rollout states in place: a version 5 rollout keeps its clusters and agents and may then end partial")
    func partialState() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db")
        do {
            let database = try Database(path: path)
            #expect(try Migrator.migrate(database, to: 5) == (0, 5))
            try database.executeScript("""
                INSERT INTO clusters (prefix, created_ms, updated_ms) VALUES ('10.0.0.0/24', 1, 1);
                INSERT INTO agents (id, address, port, cluster_id, main_version, upgrader_version, role, cpu_idle, mem_idle,
                                    last_seen_ms, state, registered_ms)
                    VALUES ('a1', '10.0.0.5', 7000, 1, '1.0', '1.0', 'member', 0.5, 0.25, 10, 'online', 10);
                INSERT INTO releases (version, name, manifest, signature, key_id, blob_digest, size, chunk_size, chunk_count,
                                      created_ms, stored_ms, complete)
                    VALUES ('1.1', 'cascade-agent', x'00', x'00', 'k', '\(String(repeating: "ab", count: 32))', 1, 1, 1, 1, 1, 1);
                INSERT INTO rollouts (id, release_version, clusters_json, max_unavailable, max_parallel_clusters, canary_clusters,
                                      failure_budget_percent, health_timeout_s, rollback, state, created_by_role, created_by_id,
                                      created_ms, updated_ms)
                    VALUES (1, '1.1', '[]', 1, 1, 0, 50, 120, 0, 'running', 'operator', 'alice', 1, 1);
                INSERT INTO rollout_clusters (rollout_id, cluster_id, position, wave, state, updated_ms)
                    VALUES (1, 1, 0, 0, 'succeeded', 1);
                INSERT INTO rollout_agents (rollout_id, agent_id, cluster_id, state, entered_ms) VALUES (1, 'a1', 1, 'rolled-back', 1);
                """)
            // Version 5 knows no partial state.
            #expect(throws: StoreError.self) { try database.execute("UPDATE rollouts SET state = 'partial' WHERE id = 1") }
        }
        let store = try CoordinatorStore(path: path)
        #expect(try store.schemaVersion == Schema.latestVersion)
        #expect(try store.rolloutClusters(rolloutID: 1).map(\.state) == [.succeeded])
        #expect(try store.rolloutAgents(rolloutID: 1).map(\.state) == [.rolledBack])
        let ended = try store.transitionRollout(id: 1, to: .partial, reason: "succeeded with 1 rolled back", actor: .coordinator())
        #expect(ended.state == .partial)
        #expect(try store.rollout(id: 1)?.state == .partial)
        #expect(try store.database.queryOne("PRAGMA integrity_check") { $0.text(0) } == "ok")
        // The CHECK still refuses a state nobody defined.
        #expect(throws: StoreError.self) { try store.database.execute("UPDATE rollouts SET state = 'bogus' WHERE id = 1") }
        // A second connection (another coordinator start) sees the widened table too.
        let again = try Database(path: path)
        #expect(try again.queryOne("SELECT state FROM rollouts WHERE id = 1") { $0.text(0) } == "partial")
        try again.execute("UPDATE rollouts SET state = 'partial' WHERE id = 1")
    }

    @Test("a version 5 audit log gets each event's rollout, cluster and agent from its subject, and a cluster's rollout state its cluster from the detail")
    func eventRefsFromVersion5() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db")
        do {
            let database = try Database(path: path)
            #expect(try Migrator.migrate(database, to: 5) == (0, 5))
            for (kind, subject, detail) in [
                ("rollout.cluster-state", "rollout:7", "cluster fd00:1::/64: pending → running: started (wave 1)"),
                ("rollout.agent-state", "rollout:7", "agent a1-01: pending → instructed"),
                ("cluster.leader-changed", "cluster:127.0.1.0/24", "leader none → a1, epoch 1: elected"),
                ("agent.offline", "agent:a1-02", "it closed its session"),
                ("release.created", "release:1.1", "pushed"),
            ] {
                try database.execute(
                    "INSERT INTO events (time_ms, actor_role, actor_id, kind, subject, detail) VALUES (1, 'coordinator', 'c', ?, ?, ?)",
                    [.text(kind), .text(subject), .text(detail)])
            }
        }
        let store = try CoordinatorStore(path: path)
        let events = try store.events()
        #expect(events.map(\.rolloutID) == [7, 7, 0, 0, 0])
        #expect(events.map(\.cluster) == ["fd00:1::/64", "", "127.0.1.0/24", "", ""])
        #expect(events.map(\.agentID) == ["", "a1-01", "", "a1-02", ""])
    }

    @Test("a database from a newer schema is refused")
    func tooNew() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db")
        do {
            let database = try Database(path: path)
            try database.executeScript("PRAGMA user_version = 99")
        }
        let error = #expect(throws: StoreError.self) { try CoordinatorStore(path: path) }
        #expect(error?.code == .schemaTooNew)
        #expect(error?.message == "the database \(path) has schema version 99; this build knows versions up to \(Schema.latestVersion)")
    }

    @Test("a failing migration leaves the previous version and no partial tables")
    func failingMigration() throws {
        let directory = try TemporaryDirectory()
        let database = try Database(path: directory.file("db"))
        let broken = Migration(version: 2, summary: "broken", sql: "CREATE TABLE half (x INTEGER); CREATE TABLE agents (x INTEGER);")
        #expect(throws: StoreError.self) { try Migrator.migrate(database, migrations: [Schema.version1, broken]) }
        #expect(try Migrator.version(of: database) == 1)
        #expect(try !names(database, type: "table").contains("half"))
    }
}
