#if canImport(Glibc)
import Glibc
#endif

/// An event loop is also a task executor: a connection's own tasks, handlers registered to run
/// on the loop and callers that opt in run on the loop's thread
/// (`Task(executorPreference: loop)`), so what the loop reads resumes them without waking
/// another thread. Work that may block (disk, SQLite, most handlers) stays on the global pool.
extension EventLoop: TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let queued = state.withLock { state -> Bool in
            if state.jobsHandedOff { return false }
            state.jobs.append(unowned)
            return true
        }
        // The loop thread has exited: a task that prefers it must still finish (a caller
        // resumed after the shutdown, say), so its job goes to the global pool.
        guard queued else { return globalConcurrentExecutor.enqueue(ExecutorJob(unowned)) }
        if UInt(pthread_self()) != loopThread.load(ordering: .acquiring) { wake() }
    }
}
