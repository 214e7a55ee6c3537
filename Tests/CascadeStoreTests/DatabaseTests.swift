@testable import CascadeStore
import CascadeTestSupport
import Testing

@Suite("SQLite wrapper")
struct DatabaseTests {
    let directory: TemporaryDirectory
    let database: Database

    init() throws {
        directory = try TemporaryDirectory(prefix: "cascade-db")
        database = try Database(path: directory.file("test.sqlite3"))
        try database.executeScript("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, data BLOB) STRICT")
    }

    @Test("the connection runs in WAL mode with synchronous=FULL and foreign keys on")
    func pragmas() throws {
        #expect(try database.queryOne("PRAGMA journal_mode") { $0.text(0) } == "wal")
        #expect(try database.queryOne("PRAGMA synchronous") { $0.int(0) } == 2)
        #expect(try database.queryOne("PRAGMA foreign_keys") { $0.int(0) } == 1)
    }

    @Test("values of every type round-trip through binding and reading")
    func roundTrip() throws {
        try database.execute("INSERT INTO t (id, name, data) VALUES (?, ?, ?)", [.integer(Int64.max), .text("héllo\u{0}x"), .blob([0, 1, 255])])
        try database.execute("INSERT INTO t (id, name, data) VALUES (?, ?, ?)", [.integer(-5), .text(""), .blob([])])
        try database.execute("INSERT INTO t (id, name, data) VALUES (?, ?, ?)", [.integer(7), .text("null"), .null])
        let rows = try database.query("SELECT id, name, data FROM t ORDER BY id") { row in
            (row.int64(0), row.text(1), row.isNull(2) ? nil : row.blob(2))
        }
        #expect(rows.count == 3)
        #expect(rows[0] == (-5, "", []))
        #expect(rows[1] == (7, "null", nil))
        #expect(rows[2] == (Int64.max, "héllo\u{0}x", [0, 1, 255]))
    }

    @Test("a throwing transaction leaves nothing behind, and a nested one rolls back only itself")
    func transactions() throws {
        let failure = #expect(throws: StoreError.self) {
            try database.transaction { () throws(StoreError) in
                try database.execute("INSERT INTO t (name) VALUES ('a')")
                throw StoreError(.invalidArgument, "stop")
            }
        }
        #expect(failure?.message == "stop")
        #expect(try database.queryOne("SELECT count(*) FROM t") { $0.int(0) } == 0)
        #expect(!database.isInTransaction)

        try database.transaction { () throws(StoreError) in
            try database.execute("INSERT INTO t (name) VALUES ('outer')")
            _ = try? database.transaction { () throws(StoreError) in
                try database.execute("INSERT INTO t (name) VALUES ('inner')")
                throw StoreError(.invalidArgument, "inner fails")
            }
        }
        #expect(try database.query("SELECT name FROM t ORDER BY id") { $0.text(0) } == ["outer"])
    }

    @Test("a constraint failure is a typed error with SQLite's message and the SQL")
    func constraintError() throws {
        try database.execute("INSERT INTO t (name) VALUES (?)", [.text("x")])
        let error = #expect(throws: StoreError.self) {
            try database.execute("INSERT INTO t (name) VALUES (?)", [.text("x")])
        }
        #expect(error?.code == .constraint)
        #expect(error?.message == "running a statement failed: UNIQUE constraint failed: t.name")
        #expect(error?.sqliteCode == 2067)  // SQLITE_CONSTRAINT_UNIQUE
        #expect(error?.context == "INSERT INTO t (name) VALUES (?)")
        let syntax = #expect(throws: StoreError.self) { try database.execute("SELEC 1") }
        #expect(syntax?.code == .sqlite)
        #expect(syntax?.message == "preparing a statement failed: near \"SELEC\": syntax error")
    }

    @Test("a query nested in another's row loop over the same SQL gets its own statement")
    func nestedSameStatement() throws {
        for name in ["a", "b"] { try database.execute("INSERT INTO t (name) VALUES (?)", [.text(name)]) }
        let sql = "SELECT name FROM t ORDER BY name"
        let pairs = try database.query(sql) { (outer: Row) throws(StoreError) in
            (outer.text(0), try database.query(sql) { $0.text(0) })
        }
        #expect(pairs.map(\.0) == ["a", "b"])
        #expect(pairs.map(\.1) == [["a", "b"], ["a", "b"]])
    }

    @Test("a wrong parameter count is refused before running")
    func parameterCount() throws {
        let error = #expect(throws: StoreError.self) { try database.execute("INSERT INTO t (name) VALUES (?)", []) }
        #expect(error?.message == "statement expects 1 parameters, got 0")
    }
}

@Suite("Locking")
struct LockingTests {
    @Test("a write blocked by another process's transaction fails with busy after the busy timeout")
    func busy() throws {
        let directory = try TemporaryDirectory()
        let store = try CoordinatorStore(
            dataDirectory: directory.path, configuration: StoreConfiguration(busyTimeout: .milliseconds(50)))
        let other = try Database(path: store.path)
        try other.executeScript("BEGIN IMMEDIATE")
        let error = #expect(throws: StoreError.self) {
            try store.registerAgent(AgentRegistration(
                id: "a1", address: "127.0.1.1", port: 1, mainVersion: "1", upgraderVersion: "1", cpuIdle: 0, memoryIdle: 0))
        }
        #expect(error?.code == .busy)
        #expect(error?.message == "running a script failed: database is locked")
        try other.executeScript("ROLLBACK")
        #expect(try store.agents().isEmpty)
    }
}
