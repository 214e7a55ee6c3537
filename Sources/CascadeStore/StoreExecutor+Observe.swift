extension StoreExecutor {
    /// Calls `observer` after every outermost transaction with its duration in seconds (BEGIN
    /// to COMMIT or ROLLBACK) and whether it committed: the store's latency, for metrics. Runs
    /// on the store's queue, so it must be quick.
    public func observeTransactions(_ observer: @escaping @Sendable (_ seconds: Double, _ committed: Bool) -> Void) {
        runBlocking { store in store.database.onTransaction = observer }
    }
}
