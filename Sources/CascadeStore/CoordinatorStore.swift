#if canImport(Glibc)
import Glibc
#endif

/// The coordinator's database: the fleet (agents, clusters, leaders), releases, rollouts and the
/// audit log, as typed records. The only place Cascade speaks SQL.
///
/// Every method is synchronous and may block on disk (every commit fsyncs). The coordinator
/// must never call them on an event-loop thread: use `StoreExecutor`, which owns the store on
/// a dedicated serial queue and lets callers `await` each call. Every method that changes
/// several rows does so in one transaction, together with its event rows.
public final class CoordinatorStore {
    /// The database file's name inside the coordinator's data directory.
    public static let databaseFileName = "coordinator.sqlite3"

    public let configuration: StoreConfiguration
    let database: Database
    let clock: @Sendable () -> Timestamp

    /// Opens (creating if needed) the database at `path` and migrates it to the newest schema.
    public init(
        path: String,
        configuration: StoreConfiguration = StoreConfiguration(),
        clock: @escaping @Sendable () -> Timestamp = { Timestamp.now() }
    ) throws(StoreError) {
        self.configuration = configuration
        self.clock = clock
        self.database = try Database(path: path, busyTimeout: configuration.busyTimeout)
        try Migrator.migrate(database)
    }

    /// Opens `<dataDirectory>/coordinator.sqlite3`, creating the directory (mode 0700) if needed.
    public convenience init(
        dataDirectory: String,
        configuration: StoreConfiguration = StoreConfiguration(),
        clock: @escaping @Sendable () -> Timestamp = { Timestamp.now() }
    ) throws(StoreError) {
        try FileIO.makeDirectories(dataDirectory)
        try self.init(path: "\(dataDirectory)/\(CoordinatorStore.databaseFileName)", configuration: configuration, clock: clock)
    }

    /// The schema version of the open database.
    public var schemaVersion: Int {
        get throws(StoreError) { try Migrator.version(of: database) }
    }

    public var path: String { database.path }
}

/// Confined to one thread at a time by design (see `StoreExecutor`).
@available(*, unavailable)
extension CoordinatorStore: Sendable {}
