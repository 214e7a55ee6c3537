/// Runs `body`, cancelling it and throwing `.timedOut` if it has not finished after `limit`.
/// `what` names the operation in the error ("TLS handshake with 127.0.0.1:7000").
public func withTimeout<T: Sendable>(
    _ limit: Duration, on loop: EventLoop, what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await loop.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw NetError(.timedOut, "\(what) did not finish within \(limit)")
        }
        return value
    }
}
