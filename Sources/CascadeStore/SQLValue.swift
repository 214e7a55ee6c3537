import CSQLite

/// A value bound to a statement parameter.
enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    static func int(_ value: Int) -> SQLValue { .integer(Int64(value)) }
    static func bool(_ value: Bool) -> SQLValue { .integer(value ? 1 : 0) }
    static func time(_ value: Timestamp) -> SQLValue { .integer(value.milliseconds) }
    static func optionalText(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
    static func optionalTime(_ value: Timestamp?) -> SQLValue { value.map { .integer($0.milliseconds) } ?? .null }
    static func optionalInteger(_ value: Int64?) -> SQLValue { value.map { .integer($0) } ?? .null }
}

/// The current row of a stepping statement; valid only inside the closure it is passed to.
/// Columns are read by index in the order of the SELECT list (the tables are STRICT, so a
/// NOT NULL column always holds its declared type).
struct Row {
    let handle: OpaquePointer
    let sql: String

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    func bool(_ column: Int32) -> Bool { sqlite3_column_int64(handle, column) != 0 }
    func timestamp(_ column: Int32) -> Timestamp { Timestamp(milliseconds: int64(column)) }

    func text(_ column: Int32) -> String {
        guard let bytes = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let bytes = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }

    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }
    func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }
    func optionalTimestamp(_ column: Int32) -> Timestamp? { isNull(column) ? nil : timestamp(column) }

    /// Reads a text column as a `RawRepresentable` enum; an unknown value means the row was
    /// written by something other than this store.
    func value<E: RawRepresentable>(_ column: Int32, as type: E.Type) throws(StoreError) -> E where E.RawValue == String {
        let raw = text(column)
        guard let value = E(rawValue: raw) else {
            throw StoreError(.corrupt, "unknown \(E.self) value '\(raw)' in the database", context: sql)
        }
        return value
    }
}
