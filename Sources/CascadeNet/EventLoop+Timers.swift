import Synchronization

/// A scheduled callback that can still be cancelled.
public struct TimerHandle: Sendable, Hashable {
    let id: UInt64
}

extension EventLoop {
    /// Runs `body` on the loop thread after `delay`. Keep it short: it must not block.
    @discardableResult
    public func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> TimerHandle {
        let deadline = MonotonicTime.now() + delay
        let (id, mustWake) = state.withLock { state -> (UInt64, Bool) in
            // After shutdown nothing would ever fire it; hand back a dead handle.
            if state.stopping { return (0, false) }
            let added = state.timers.add(deadline: deadline, action: .callback(body))
            return (added.id, added.isEarliest)
        }
        if mustWake { wake() }
        return TimerHandle(id: id)
    }

    /// Cancels a timer; true if it had not fired yet.
    @discardableResult
    public func cancel(_ handle: TimerHandle) -> Bool {
        state.withLock { $0.timers.cancel(id: handle.id) } != nil
    }

    /// Timers not yet fired or cancelled (for tests and metrics).
    public var pendingTimerCount: Int {
        state.withLock { $0.timers.count }
    }

    /// Suspends the calling task for `delay`, measured by this loop's clock.
    /// Throws `CancellationError` when the task is cancelled and `.shutdown` if the loop stops.
    public func sleep(for delay: Duration) async throws {
        let deadline = MonotonicTime.now() + delay
        let timerID = Mutex<UInt64?>(nil)
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: Waiter) in
                let outcome = state.withLock { state -> (failure: (any Error)?, wake: Bool) in
                    if state.stopping { return (NetError(.shutdown, "the event loop \(name) is shut down"), false) }
                    if Task.isCancelled { return (CancellationError(), false) }
                    let added = state.timers.add(deadline: deadline, action: .resume(continuation))
                    timerID.withLock { $0 = added.id }
                    return (nil, added.isEarliest)
                }
                if let failure = outcome.failure { continuation.resume(throwing: failure) }
                if outcome.wake { wake() }
            }
        } onCancel: {
            let action = state.withLock { state -> TimerAction? in
                guard let id = timerID.withLock({ $0 }) else { return nil }
                return state.timers.cancel(id: id)
            }
            action?.fail(CancellationError())
        }
    }
}

