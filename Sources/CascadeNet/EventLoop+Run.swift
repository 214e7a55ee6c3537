#if canImport(Glibc)
import Glibc
#endif
import CCascadeShims

extension EventLoop {
    /// The loop thread's body: wait, resume whoever is ready, fire due timers.
    func run() {
        loopThread.store(UInt(pthread_self()), ordering: .releasing)
        let capacity = 256
        var tokens = [UInt64](repeating: 0, count: capacity)
        var events = [UInt32](repeating: 0, count: capacity)
        while true {
            let timeout = state.withLock { state -> Int32 in
                if state.stopping { return -2 }
                if !state.jobs.isEmpty { return 0 }
                return state.timers.millisecondsUntilNext(from: .now())
            }
            if timeout == -2 { break }
            let count = cascade_epoll_wait(epollFD, &tokens, &events, Int32(capacity), timeout)
            if count < 0 && errno != EINTR {
                fatalError("epoll_wait failed on \(name): \(String(cString: strerror(errno)))")
            }
            var ready: [Waiter] = []
            if count > 0 {
                state.withLock { state in
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
                        }
                        if failed || mask & EPOLLOUT.rawValue != 0 {
                            ready += registration.writers.values
                            registration.writers.removeAll()
                        }
                        if !registration.readers.isEmpty || !registration.writers.isEmpty {
                            _ = arm(registration, token: token)
                        }
                        state.registrations[token] = registration
                    }
                }
            }
            // Resume outside the lock; the woken tasks run on the cooperative pool, not here.
            for waiter in ready { waiter.resume() }
            let due = state.withLock { $0.timers.popDue(now: .now()) }
            for action in due { action.fire() }
            // Jobs often queue more jobs (a read wakes a handler, which wakes the writer):
            // run those too before polling again, saving an epoll_wait per hop. Bounded, so
            // I/O is still polled under a steady stream of work.
            var batches = 0
            while runJobs() && batches < 16 { batches += 1 }
        }
        drainOnShutdown()
        exited.signal()
    }

    /// Runs the tasks queued on this loop as their executor (one batch per turn, so I/O
    /// readiness is polled between batches).
    /// Returns whether there was anything to run.
    private func runJobs() -> Bool {
        let jobs = state.withLock { state -> [UnownedJob] in
            let jobs = state.jobs
            state.jobs = []
            return jobs
        }
        for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
        return !jobs.isEmpty
    }

    private func drainOnShutdown() {
        let (waiters, actions) = state.withLock { state -> ([Waiter], [TimerAction]) in
            var waiters: [Waiter] = []
            for (_, registration) in state.registrations {
                waiters += registration.readers.values
                waiters += registration.writers.values
            }
            state.registrations.removeAll()
            return (waiters, state.timers.removeAll())
        }
        let error = NetError(.shutdown, "the event loop \(name) was shut down")
        for waiter in waiters { waiter.resume(throwing: error) }
        for action in actions { action.fail(error) }
    }
}
