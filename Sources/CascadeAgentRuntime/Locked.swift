import Synchronization

/// A value behind a mutex, as a class so it can be a stored property of Sendable types
/// (a `Mutex` declared as a local in an async function hangs this toolchain's compiler).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        mutex = Mutex(value)
    }

    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R {
        mutex.withLock { body(&$0) }
    }

    var value: Value { mutex.withLock { $0 } }
}

/// A counter that wakes its waiters when it moves: "something changed, look again". Waiters
/// pass the generation they last saw, so a change between looking and waiting is never lost.
final class ChangeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextToken: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    init() {}

    var generation: UInt64 { state.withLock { $0.generation } }

    /// Moves the generation and wakes every waiter.
    func notify() {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    /// Returns once the generation differs from `seen` (at once if it already does), or when
    /// the task is cancelled. Returns the generation it saw last.
    @discardableResult
    func wait(after seen: UInt64) async -> UInt64 {
        let token = state.withLock { state -> UInt64 in
            state.nextToken += 1
            return state.nextToken
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.generation != seen || Task.isCancelled { return true }
                    state.waiters[token] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: token) }
            waiter?.resume()
        }
        return generation
    }
}

/// Sleeps without throwing (a cancelled sleep just returns early; callers check cancellation).
func pause(_ duration: Duration) async {
    try? await Task.sleep(for: duration)
}
