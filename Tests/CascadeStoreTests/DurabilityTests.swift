@testable import CascadeStore
import CascadeTestSupport
import Foundation
import Testing

/// kill -9 leaves the database files exactly as the kernel has them. Copying the database and
/// its WAL while the writer still holds them open (and, below, mid-transaction) captures that
/// state byte for byte; opening the copy runs SQLite's crash recovery on it. (A kill -9 of the
/// real coordinator binary is tested with the coordinator.)
@Suite("Durability")
struct DurabilityTests {
    /// Copies `<dir>/coordinator.sqlite3` and its `-wal` (not `-shm`, which recovery rebuilds).
    func crashCopy(of source: TemporaryDirectory) throws -> TemporaryDirectory {
        let copy = try TemporaryDirectory(prefix: "cascade-crash")
        for suffix in ["", "-wal"] {
            let name = CoordinatorStore.databaseFileName + suffix
            let data = try Data(contentsOf: URL(fileURLWithPath: source.file(name)))
            try data.write(to: URL(fileURLWithPath: copy.file(name)))
        }
        return copy
    }

    @Test("every acknowledged change survives a crash; a transaction in flight leaves nothing")
    func crashMidLoop() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        var acknowledged: [String] = []
        for index in 0..<200 {
            try fixture.register("agent-\(index)", "127.0.\(index % 4).\(index / 4 + 1)")
            acknowledged.append("agent-\(index)")
        }
        // A change in flight: rows written inside a transaction that has not committed when the
        // process dies (the copy is taken inside it).
        var crashed: TemporaryDirectory?
        _ = try? store.database.transaction { () throws(StoreError) in
            for index in 0..<500 {
                try store.database.execute(
                    "INSERT INTO events (time_ms, actor_role, actor_id, kind, subject, detail) VALUES (1, 'x', 'x', 'in-flight', 's', ?)",
                    [.text(String(repeating: "x", count: 2000) + "\(index)")])
            }
            crashed = try? crashCopy(of: fixture.directory)
            throw StoreError(.sqlite, "the process is killed here")
        }
        let copy = try #require(crashed)
        let reopened = try CoordinatorStore(dataDirectory: copy.path)
        #expect(try reopened.agents().map(\.id).sorted() == acknowledged.sorted())
        #expect(try reopened.clusters().map(\.prefix) == ["127.0.0.0/24", "127.0.1.0/24", "127.0.2.0/24", "127.0.3.0/24"])
        #expect(try reopened.clusters().allSatisfy { $0.leaderEpoch == 1 && $0.leaderID != nil })
        #expect(try reopened.events(kind: "in-flight").isEmpty)
        #expect(try reopened.events(kind: .agentRegistered).count == 200)
        #expect(try reopened.database.queryOne("PRAGMA integrity_check") { $0.text(0) } == "ok")
    }

    @Test("a rollout's state as of its last acknowledged transition survives a crash")
    func rolloutSurvives() throws {
        let fixture = try StoreFixture()
        try fixture.register("a1", "127.0.1.1")
        try fixture.register("a2", "127.0.1.2")
        try fixture.pushRelease("2.0.0")
        let store = fixture.store
        let id = try store.createRollout(release: "2.0.0", policy: RolloutPolicy(), actor: .operator("o")).id
        _ = try store.transitionRollout(id: id, to: .running, reason: nil, actor: .coordinator())
        _ = try store.transitionRolloutCluster(rolloutID: id, clusterID: 1, to: .running, reason: nil, actor: .coordinator())
        _ = try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: .instructed, actor: .coordinator())
        _ = try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: .downloading, actor: .agent("a1"))
        try store.recordDownloadProgress(rolloutID: id, agentID: "a1", bytes: 6)
        let copy = try crashCopy(of: fixture.directory)
        let reopened = try CoordinatorStore(dataDirectory: copy.path, clock: fixture.clock.function)
        #expect(try reopened.activeRollouts().map(\.id) == [id])
        #expect(try reopened.rollout(id: id)?.state == .running)
        let a1 = try #require(try reopened.rolloutAgent(rolloutID: id, agentID: "a1"))
        #expect(a1.state == .downloading)
        #expect(a1.bytes == 6)
        #expect(a1.deadline == fixture.clock.timestamp + .seconds(1800))
        #expect(try reopened.rolloutAgent(rolloutID: id, agentID: "a2")?.state == .pending)
        #expect(try reopened.release(version: "2.0.0")?.isComplete == true)
    }

    @Test("closing a connection inside a transaction rolls it back")
    func uncommittedClose() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("db")
        do {
            let database = try Database(path: path)
            try database.executeScript("CREATE TABLE t (x INTEGER) STRICT; INSERT INTO t VALUES (1);")
            try database.executeScript("BEGIN IMMEDIATE; INSERT INTO t VALUES (2);")
            // A second connection sees only committed rows while the first is mid-transaction.
            let reader = try Database(path: path)
            #expect(try reader.query("SELECT x FROM t") { $0.int(0) } == [1])
        }
        let reopened = try Database(path: path)
        #expect(try reopened.query("SELECT x FROM t") { $0.int(0) } == [1])
    }
}

@Suite("Store executor")
struct StoreExecutorTests {
    @Test("async callers run store work on the executor and get typed errors back")
    func executor() async throws {
        let directory = try TemporaryDirectory()
        let executor = try StoreExecutor(dataDirectory: directory.path)
        let assignment = try await executor.run { store throws(StoreError) in
            try store.registerAgent(AgentRegistration(
                id: "a1", address: "127.0.1.1", port: 1, mainVersion: "1", upgraderVersion: "1", cpuIdle: 1, memoryIdle: 1))
        }
        #expect(assignment.role == .leader)
        let failure = await #expect(throws: StoreError.self) {
            try await executor.run { store throws(StoreError) in try store.assignment(agentID: "nobody") }
        }
        #expect(failure?.code == .notFound)
        #expect(try executor.runBlocking { try $0.agents().map(\.id) } == ["a1"])
    }
}
