#if canImport(Glibc)
import Glibc
#endif
import CCascadeShims

extension EventLoop {
    /// The loop thread's body. One turn: wait for I/O, run read callbacks and resume waiters,
    /// fire due timers, run the jobs that prefer this loop, run the end-of-turn work (writes),
    /// then arm the registrations that gained a waiter during the turn. Arming last keeps the
    /// epoll_ctl off a call's round trip: the reply has already been written.
    func run() {
        loopThread.store(UInt(pthread_self()), ordering: .releasing)
        let capacity = 256
        var tokens = [UInt64](repeating: 0, count: capacity)
        var events = [UInt32](repeating: 0, count: capacity)
        // Scratch lists swapped with the shared ones each turn and emptied keeping their
        // storage, so a quiet turn allocates nothing.
        var ready: [Waiter] = []
        var callbacks: [(ReadinessCallback, Bool)] = []
        var jobs: [UnownedJob] = []
        var work: [@Sendable () -> Void] = []
        var tokensToArm: [UInt64] = []
        while true {
            var unarmable: [Waiter] = []
            var unarmableCallbacks: [ReadinessCallback] = []
            let timeout = state.withLock { state -> Int32 in
                if state.stopping { return -2 }
                (unarmable, unarmableCallbacks) = armDeferred(&state, &tokensToArm)
                if !state.jobs.isEmpty || !state.callbacks.isEmpty || !state.beforePoll.isEmpty
                    || !unarmable.isEmpty || !unarmableCallbacks.isEmpty { return 0 }
                return state.timers.millisecondsUntilNext(from: .now())
            }
            if timeout == -2 { break }
            if !unarmable.isEmpty || !unarmableCallbacks.isEmpty {
                let error = NetError.system("epoll_ctl(MOD)", errno: errno)
                for waiter in unarmable { waiter.resume(throwing: error) }
                for callback in unarmableCallbacks { callback(false) }
            }
            let count = cascade_epoll_wait(epollFD, &tokens, &events, Int32(capacity), timeout)
            if count < 0 && errno != EINTR {
                fatalError("epoll_wait failed on \(name): \(String(cString: strerror(errno)))")
            }
            state.withLock { state in
                swap(&callbacks, &state.callbacks)
                guard count > 0 else { return }
                for index in 0..<Int(count) {
                    let token = tokens[index]
                    if token == Self.wakeToken {
                        var value: UInt64 = 0
                        _ = read(wakeFD, &value, 8)
                        continue
                    }
                    guard var registration = state.registrations[token] else { continue }
                    let mask = events[index]
                    let failed = mask & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
                    if failed || mask & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0 {
                        ready += registration.readers.values
                        registration.readers.removeAll()
                        if let callback = registration.readCallback {
                            registration.readCallback = nil
                            callbacks.append((callback, true))
                        }
                    }
                    if failed || mask & EPOLLOUT.rawValue != 0 {
                        ready += registration.writers.values
                        registration.writers.removeAll()
                    }
                    if registration.isWaitedOn { state.unarmed.append(token) }
                    state.registrations[token] = registration
                }
            }
            // Outside the lock: read callbacks run here, inline; resumed tasks that prefer this
            // loop queue as jobs below, the others run on the cooperative pool.
            for (callback, isReady) in callbacks { callback(isReady) }
            for waiter in ready { waiter.resume() }
            callbacks.removeAll(keepingCapacity: true)
            ready.removeAll(keepingCapacity: true)
            let due = state.withLock { $0.timers.popDue(now: .now()) }
            for action in due { action.fire() }
            // Jobs often queue more jobs (a read wakes a handler, which wakes the writer):
            // run those too before polling again, saving an epoll_wait per hop. Bounded, so
            // I/O is still polled under a steady stream of work.
            var batches = 0
            while runJobs(&jobs) && batches < 16 { batches += 1 }
            runBeforePoll(&work)
        }
        drainOnShutdown()
        exited.signal()
    }

    /// Arms the registrations that got a waiter during this turn. Returns the waiters and
    /// callbacks of any that could not be armed, to be failed outside the lock rather than
    /// left parked for ever.
    private func armDeferred(_ state: inout LoopState, _ tokens: inout [UInt64]) -> ([Waiter], [ReadinessCallback]) {
        guard !state.unarmed.isEmpty else { return ([], []) }
        swap(&tokens, &state.unarmed)
        defer { tokens.removeAll(keepingCapacity: true) }
        var failed: [Waiter] = []
        var failedCallbacks: [ReadinessCallback] = []
        for token in tokens {
            guard var registration = state.registrations[token], registration.isWaitedOn else { continue }
            if arm(registration, token: token) { continue }
            failed += registration.readers.values
            failed += registration.writers.values
            if let callback = registration.readCallback { failedCallbacks.append(callback) }
            registration.readers.removeAll()
            registration.writers.removeAll()
            registration.readCallback = nil
            state.registrations[token] = registration
        }
        return (failed, failedCallbacks)
    }

    /// End-of-turn work, including any queued while it runs (bounded, like jobs).
    private func runBeforePoll(_ work: inout [@Sendable () -> Void]) {
        for _ in 0..<4 {
            state.withLock { swap(&work, &$0.beforePoll) }
            if work.isEmpty { return }
            for body in work { body() }
            work.removeAll(keepingCapacity: true)
        }
    }

    /// Runs the tasks queued on this loop as their executor (one batch per turn, so I/O
    /// readiness is polled between batches).
    /// Returns whether there was anything to run.
    private func runJobs(_ jobs: inout [UnownedJob]) -> Bool {
        state.withLock { swap(&jobs, &$0.jobs) }
        if jobs.isEmpty { return false }
        for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
        jobs.removeAll(keepingCapacity: true)
        return true
    }

    private func drainOnShutdown() {
        let (waiters, actions, callbacks, work) = state.withLock {
            state -> ([Waiter], [TimerAction], [ReadinessCallback], [@Sendable () -> Void]) in
            var waiters: [Waiter] = []
            var callbacks = state.callbacks.map(\.0)
            for (_, registration) in state.registrations {
                waiters += registration.readers.values
                waiters += registration.writers.values
                if let callback = registration.readCallback { callbacks.append(callback) }
            }
            state.registrations.removeAll()
            state.callbacks.removeAll()
            let work = state.beforePoll
            state.beforePoll.removeAll()
            return (waiters, state.timers.removeAll(), callbacks, work)
        }
        let error = NetError(.shutdown, "the event loop \(name) was shut down")
        for body in work { body() }
        for waiter in waiters { waiter.resume(throwing: error) }
        for callback in callbacks { callback(false) }
        for action in actions { action.fail(error) }
        // Last, once nothing else runs here: the jobs still queued (including those of tasks
        // the failures above just resumed), and every later one, run on the global pool, so
        // no task that prefers this loop is stranded, and none runs beside the loop thread.
        let jobs = state.withLock { state in
            state.jobsHandedOff = true
            defer { state.jobs.removeAll() }
            return state.jobs
        }
        for job in jobs { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }
}
