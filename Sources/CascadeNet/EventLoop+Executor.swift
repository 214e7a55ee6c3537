#if canImport(Glibc)
import Glibc
#endif

/// An event loop is also a task executor: a connection's reader and writer tasks run on the
/// loop's own thread (`Task(executorPreference: loop)`), so the readiness the loop sees resumes
/// them without waking another thread. Work that may block (disk, SQLite, handlers) stays on
/// the global pool.
extension EventLoop: TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        state.withLock { $0.jobs.append(unowned) }
        if UInt(pthread_self()) != loopThread.load(ordering: .acquiring) { wake() }
    }
}
