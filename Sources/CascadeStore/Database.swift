import CSQLite

/// One SQLite connection, owned: closed when released. Not thread-safe by design — a
/// `Database` lives on one serial executor (see `StoreExecutor`), so it is opened with
/// SQLITE_OPEN_NOMUTEX and is deliberately not `Sendable`.
///
/// Opened with:
/// - `journal_mode=WAL`: readers never block the writer, and a commit is one append to the log.
/// - `synchronous=FULL`: every COMMIT fsyncs the WAL before returning, so a change the store has
///   acknowledged survives not only kill -9 (which NORMAL also survives in WAL mode) but power
///   loss and kernel crashes. A rollout's state is the fleet's source of truth; ~6,600 commits/s
///   (DESIGN.md §7) is far above what the control plane writes, and heartbeats batch.
/// - `foreign_keys=ON`: SQLite leaves them off per connection unless asked.
/// - a busy timeout, so a second process (an operator's `sqlite3` shell) makes us wait, not fail.
final class Database {
    let path: String
    let handle: OpaquePointer
    private var cache: [String: Statement] = [:]
    private var transactionDepth = 0
    /// Told how long each outermost transaction took (seconds, BEGIN to COMMIT or ROLLBACK)
    /// and whether it committed (`StoreExecutor.observeTransactions`).
    var onTransaction: ((Double, Bool) -> Void)?

    init(path: String, busyTimeout: Duration = .seconds(5)) throws(StoreError) {
        var connection: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &connection, flags, nil)
        guard status == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
            sqlite3_close_v2(connection)
            throw StoreError(.sqlite, "cannot open the database \(path): \(message)", sqliteCode: status, context: "open")
        }
        self.path = path
        self.handle = connection
        sqlite3_extended_result_codes(connection, 1)
        sqlite3_busy_timeout(connection, Int32(clamping: busyTimeout.wholeMilliseconds))
        let mode = try queryOne("PRAGMA journal_mode=WAL") { $0.text(0) }
        guard mode?.lowercased() == "wal" else {
            throw StoreError(.sqlite, "cannot switch \(path) to WAL mode (journal_mode is \(mode ?? "unknown"))", context: "PRAGMA journal_mode=WAL")
        }
        try executeScript("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
    }

    deinit {
        cache.removeAll()
        // close_v2 also copes with a statement still alive elsewhere (it closes when that one goes).
        sqlite3_close_v2(handle)
    }

    // MARK: - Errors

    static func error(_ database: OpaquePointer?, _ status: Int32, _ operation: String, sql: String?) -> StoreError {
        let detail = database.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
        let code: StoreError.Code
        switch status & 0xFF {
        case SQLITE_CONSTRAINT: code = .constraint
        case SQLITE_BUSY, SQLITE_LOCKED: code = .busy
        case SQLITE_CORRUPT, SQLITE_NOTADB: code = .corrupt
        default: code = .sqlite
        }
        return StoreError(code, "\(operation) failed: \(detail)", sqliteCode: status, context: sql)
    }

    // MARK: - Statements

    /// The cached prepared statement for `sql`, or a fresh one if the cached one is mid-use.
    private func statement(_ sql: String) throws(StoreError) -> Statement {
        if let cached = cache[sql] {
            return cached.inUse ? try Statement(database: handle, sql: sql, persistent: false) : cached
        }
        let prepared = try Statement(database: handle, sql: sql, persistent: true)
        cache[sql] = prepared
        return prepared
    }

    /// Runs `sql` with `values`, calling `row` for each result row, and resets the statement.
    private func run(_ sql: String, _ values: [SQLValue], _ row: (Row) throws(StoreError) -> Void) throws(StoreError) {
        let statement = try statement(sql)
        statement.inUse = true
        defer {
            statement.reset()
            statement.inUse = false
        }
        try statement.bind(values)
        while try statement.step() {
            try row(Row(handle: statement.handle, sql: sql))
        }
    }

    /// Runs one statement that returns no rows; returns the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ values: [SQLValue] = []) throws(StoreError) -> Int {
        try run(sql, values) { _ throws(StoreError) in }
        return Int(sqlite3_changes(handle))
    }

    /// Every result row, mapped.
    func query<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (Row) throws(StoreError) -> T) throws(StoreError) -> [T] {
        var results: [T] = []
        try run(sql, values) { (row: Row) throws(StoreError) in results.append(try map(row)) }
        return results
    }

    /// The first result row, mapped, or nil.
    func queryOne<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (Row) throws(StoreError) -> T) throws(StoreError) -> T? {
        var result: T?
        try run(sql, values) { (row: Row) throws(StoreError) in
            if result == nil { result = try map(row) }
        }
        return result
    }

    /// Runs several `;`-separated statements without parameters (migrations, pragmas).
    func executeScript(_ sql: String) throws(StoreError) {
        let status = sqlite3_exec(handle, sql, nil, nil, nil)
        guard status == SQLITE_OK else { throw Database.error(handle, status, "running a script", sql: sql) }
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    // MARK: - Transactions

    /// Runs `body` in a transaction: BEGIN IMMEDIATE (the write lock up front, so a busy
    /// database waits here instead of failing at the first write), COMMIT, or ROLLBACK if `body`
    /// throws. Nested calls become savepoints, so helpers can require a transaction without
    /// caring whether their caller opened one.
    func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        let depth = transactionDepth
        let savepoint = "cascade_\(depth)"
        if depth == 0, let onTransaction {
            let started = ContinuousClock.now
            var committed = false
            defer {
                let (seconds, attoseconds) = (ContinuousClock.now - started).components
                onTransaction(Double(seconds) + Double(attoseconds) / 1e18, committed)
            }
            let result = try transaction(depth: depth, savepoint: savepoint, body)
            committed = true
            return result
        }
        return try transaction(depth: depth, savepoint: savepoint, body)
    }

    private func transaction<T>(depth: Int, savepoint: String, _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try executeScript(depth == 0 ? "BEGIN IMMEDIATE" : "SAVEPOINT \(savepoint)")
        transactionDepth += 1
        defer { transactionDepth -= 1 }
        let result: T
        do {
            result = try body()
        } catch {
            rollback(depth: depth, savepoint: savepoint)
            throw error
        }
        do {
            try executeScript(depth == 0 ? "COMMIT" : "RELEASE \(savepoint)")
        } catch {
            rollback(depth: depth, savepoint: savepoint)
            throw error
        }
        return result
    }

    private func rollback(depth: Int, savepoint: String) {
        // SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR...); then
        // there is no transaction left and ROLLBACK would only fail.
        guard isInTransaction else { return }
        if depth == 0 {
            try? executeScript("ROLLBACK")
        } else {
            try? executeScript("ROLLBACK TO \(savepoint); RELEASE \(savepoint)")
        }
    }
}
