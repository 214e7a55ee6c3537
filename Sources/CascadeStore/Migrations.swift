/// One step of the schema: the SQL that takes a database from `version - 1` to `version`.
/// Migrations are append-only: a released one is never edited, a change is a new one.
struct Migration: Sendable {
    let version: Int
    let summary: String
    /// The migration edits `sqlite_schema` directly: the schema cookie must then be bumped by
    /// hand so that other connections reload their copy of the schema.
    var rewritesSchema = false
    let sql: String
}

/// Applies migrations, each in its own transaction together with its `PRAGMA user_version`
/// bump, so a crash mid-migration leaves the previous version intact.
enum Migrator {
    /// The schema version recorded in the database file (0 for an empty database).
    static func version(of database: Database) throws(StoreError) -> Int {
        try database.queryOne("PRAGMA user_version") { $0.int(0) } ?? 0
    }

    /// Brings `database` to `target` (default: the newest known) and returns the versions before
    /// and after. Refuses a database newer than this code knows, so an older coordinator binary
    /// never writes rows it does not understand.
    @discardableResult
    static func migrate(
        _ database: Database,
        migrations: [Migration] = Schema.migrations,
        to target: Int? = nil
    ) throws(StoreError) -> (from: Int, to: Int) {
        for (offset, migration) in migrations.enumerated() {
            precondition(migration.version == offset + 1, "migrations must be numbered 1, 2, 3... without gaps")
        }
        let latest = migrations.last?.version ?? 0
        let goal = target ?? latest
        precondition(goal <= latest, "no migration to version \(goal)")
        let before = try version(of: database)
        guard before <= latest else {
            throw StoreError(
                .schemaTooNew,
                "the database \(database.path) has schema version \(before); this build knows versions up to \(latest)",
                context: "migrate")
        }
        for migration in migrations where migration.version > before && migration.version <= goal {
            try database.transaction { () throws(StoreError) in
                // Another process may have migrated between our read and our write lock.
                guard try version(of: database) < migration.version else { return }
                try database.executeScript(migration.sql)
                if migration.rewritesSchema {
                    let cookie = try database.queryOne("PRAGMA schema_version") { $0.int(0) } ?? 0
                    try database.executeScript("PRAGMA schema_version = \(cookie + 1)")
                }
                try database.executeScript("PRAGMA user_version = \(migration.version)")
            }
        }
        return (before, try version(of: database))
    }
}
