/// `--timeout` ran out: what was still going on decides the sentence the user gets.
struct DeadlineExpired: Error {
    /// Whether a connection to the coordinator was made before the deadline.
    let connected: Bool
}

/// Runs `body` until `deadline` and returns its result, or throws `DeadlineExpired` at the
/// deadline even when `body` is still inside work that ignores cancellation: the client
/// connects in a task of its own, which a timeout around the caller cannot cut short, and its
/// retry of a failed connect would otherwise double the wait. `body` is cancelled then and left
/// to wind down (its own handshake timeout bounds it). `connected` says whether it got that far.
func racing<T: Sendable>(
    until deadline: ContinuousClock.Instant, connected: Locked<Bool>, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = Race<T>()
    return try await withCheckedThrowingContinuation { continuation in
        race.begin(continuation)
        let work = Task {
            do {
                race.finish(.success(try await body()))
            } catch {
                race.finish(.failure(error))
            }
        }
        let timer = Task {
            // The deadline itself, not a poll: the clock wakes this task once.
            try? await Task.sleep(until: deadline, clock: .continuous)
            if Task.isCancelled { return }
            race.finish(.failure(DeadlineExpired(connected: connected.withLock { $0 })))
        }
        race.own(work: work, timer: timer)
    }
}

/// The first of the body and the timer to finish resumes the caller; the other is cancelled.
private final class Race<T: Sendable>: Sendable {
    private struct State: Sendable {
        var continuation: CheckedContinuation<T, any Error>?
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Locked(State())

    func begin(_ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func own(work: Task<Void, Never>, timer: Task<Void, Never>) {
        let done = state.withLock { state -> Bool in
            state.tasks = [work, timer]
            return state.continuation == nil
        }
        if done { cancelAll() }
    }

    func finish(_ result: Result<T, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
            defer { state.continuation = nil }
            return state.continuation
        }
        guard let continuation else { return }
        continuation.resume(with: result)
        cancelAll()
    }

    private func cancelAll() {
        for task in state.withLock({ $0.tasks }) { task.cancel() }
    }
}
