import CCascadeShims
import CSQLite

/// One prepared statement; finalized when released. Used by one `Database` on one thread.
final class Statement {
    let handle: OpaquePointer
    let sql: String
    private let database: OpaquePointer
    /// Set while a caller steps through rows, so a nested use of the same SQL prepares a fresh copy.
    var inUse = false

    init(database: OpaquePointer, sql: String, persistent: Bool) throws(StoreError) {
        var statement: OpaquePointer?
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let status = sqlite3_prepare_v3(database, sql, -1, flags, &statement, nil)
        guard status == SQLITE_OK, let statement else {
            sqlite3_finalize(statement)
            throw Database.error(database, status, "preparing a statement", sql: sql)
        }
        self.handle = statement
        self.sql = sql
        self.database = database
    }

    deinit {
        sqlite3_finalize(handle)
    }

    func bind(_ values: [SQLValue]) throws(StoreError) {
        let expected = Int(sqlite3_bind_parameter_count(handle))
        guard values.count == expected else {
            throw StoreError(.sqlite, "statement expects \(expected) parameters, got \(values.count)", context: sql)
        }
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null:
                status = sqlite3_bind_null(handle, index)
            case .integer(let number):
                status = sqlite3_bind_int64(handle, index, number)
            case .real(let number):
                status = sqlite3_bind_double(handle, index, number)
            case .text(let text):
                // The byte count, not -1: text may hold NUL characters.
                status = sqlite3_bind_text(handle, index, text, Int32(text.utf8.count), cascade_sqlite_transient())
            case .blob(let bytes):
                // An empty array may have no base address; bind a zero-length blob, not NULL.
                status = bytes.isEmpty
                    ? sqlite3_bind_zeroblob(handle, index, 0)
                    : bytes.withUnsafeBytes {
                        sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), cascade_sqlite_transient())
                    }
            }
            guard status == SQLITE_OK else {
                throw Database.error(database, status, "binding parameter \(index)", sql: sql)
            }
        }
    }

    /// Advances to the next row; false when the statement is done.
    func step() throws(StoreError) -> Bool {
        let status = sqlite3_step(handle)
        switch status {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw Database.error(database, status, "running a statement", sql: sql)
        }
    }

    /// Makes the statement ready for the next use and drops its bindings (and their copies).
    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }
}
