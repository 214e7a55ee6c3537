import Dispatch

/// Owns a `CoordinatorStore` on a dedicated serial dispatch queue — never an event-loop thread
/// or the cooperative pool, since every commit blocks on fsync — and lets async callers await
/// each piece of work. Work items run one at a time in submission order, so a closure may
/// read and write as one unit; for atomicity use the store's transactional methods inside it.
public final class StoreExecutor: @unchecked Sendable {
    // @unchecked: `store` is touched only on `queue` (serial), so it is never used by two
    // threads at once; callers get it only inside closures that run there, and results must
    // be Sendable, so the store cannot escape.
    private let queue: DispatchQueue
    private let store: CoordinatorStore

    /// Opens the store on the executor's queue (the caller blocks until it is open and migrated).
    public init(
        dataDirectory: String,
        configuration: StoreConfiguration = StoreConfiguration(),
        clock: @escaping @Sendable () -> Timestamp = { Timestamp.now() }
    ) throws(StoreError) {
        let queue = DispatchQueue(label: "cascade.store")
        let opened = queue.sync { () -> Result<CoordinatorStore, StoreError> in
            Result { () throws(StoreError) -> CoordinatorStore in
                try CoordinatorStore(dataDirectory: dataDirectory, configuration: configuration, clock: clock)
            }
        }
        self.queue = queue
        self.store = try opened.get()
    }

    /// Runs `body` with the store on the store's queue and returns its result.
    public func run<T: Sendable, E: Error>(_ body: @escaping @Sendable (CoordinatorStore) throws(E) -> T) async throws(E) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, E>, Never>) in
            queue.async {
                continuation.resume(returning: Result { () throws(E) -> T in try body(self.store) })
            }
        }
        return try result.get()
    }

    /// Runs `body` synchronously on the store's queue (startup and tests; never on an event loop).
    public func runBlocking<T, E: Error>(_ body: (CoordinatorStore) throws(E) -> T) throws(E) -> T {
        let result = queue.sync { Result { () throws(E) -> T in try body(store) } }
        return try result.get()
    }
}
