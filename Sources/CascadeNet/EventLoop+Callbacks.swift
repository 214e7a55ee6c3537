#if canImport(Glibc)
import Glibc
#endif

/// Readiness callbacks and end-of-turn work: the paths a connection uses to read and write on
/// the loop thread itself, with no task resumed in between (a resume costs a job hand-off on
/// every small call).
extension EventLoop {
    /// True when called on this loop's own thread.
    public var isLoopThread: Bool { UInt(pthread_self()) == loopThread.load(ordering: .relaxed) }

    /// Runs `callback` on the loop thread once the fd behind `token` is readable (or failed),
    /// or with `false` once it never will be. One-shot: call again to go on reading.
    func whenReadable(token: UInt64, _ callback: @escaping ReadinessCallback) {
        let onLoop = isLoopThread
        enum Outcome { case armed, queued, stopped }
        let outcome = state.withLock { state -> Outcome in
            if state.stopping { return .stopped }
            guard var registration = state.registrations[token] else {
                state.callbacks.append((callback, false))
                return .queued
            }
            registration.readCallback = callback
            state.registrations[token] = registration
            // On the loop thread, armed just before the next poll (after this turn's writes).
            if onLoop {
                state.unarmed.append(token)
                return .armed
            }
            if arm(registration, token: token) { return .armed }
            registration.readCallback = nil
            state.registrations[token] = registration
            state.callbacks.append((callback, false))
            return .queued
        }
        switch outcome {
        case .armed: break
        case .queued: if !onLoop { wake() }
        // The loop thread is gone or going: nothing will poll this fd again.
        case .stopped: callback(false)
        }
    }

    /// Runs `body` on the loop thread at the start of its next turn, before it waits for I/O
    /// again (a reader that stopped with input still buffered in user space, so epoll would not
    /// report it, yields to the other connections this way).
    public func nextTurn(_ body: @escaping @Sendable () -> Void) {
        let onLoop = isLoopThread
        let stopped = state.withLock { state -> Bool in
            if state.stopping { return true }
            state.callbacks.append(({ _ in body() }, true))
            return false
        }
        if stopped { body() } else if !onLoop { wake() }
    }

    /// Runs `body` on the loop thread after the jobs of the current turn and before the loop
    /// next waits for I/O: writes queued during a turn go out together, once.
    public func beforeNextPoll(_ body: @escaping @Sendable () -> Void) {
        let onLoop = isLoopThread
        let stopped = state.withLock { state -> Bool in
            if state.stopping { return true }
            state.beforePoll.append(body)
            return false
        }
        // A stopped loop runs nothing more: do it here rather than drop it (a final flush).
        if stopped { body() } else if !onLoop { wake() }
    }
}
