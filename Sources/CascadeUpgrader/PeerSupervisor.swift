import CascadeLog
public import CascadeInstall
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

private let log = Logger("supervisor")

/// Keeps one program of the pair running: starts it through its `current` link, notices its
/// death within a poll interval, restarts it with exponential backoff, and reports a crash
/// loop. The program may be our child (reaped with waitpid) or not — after a restart the other
/// program's child is not ours — so "alive" is "our child has not exited, or its lock is held".
public final class PeerSupervisor: Sendable {
    public let layout: AgentLayout
    public let program: Program
    private let arguments: [String]
    private let config: AgentConfig
    private let state = Mutex(State())
    private let clock = ContinuousClock()

    private struct State {
        var child: Int32?
        var paused = false
        var restarts: [ContinuousClock.Instant] = []
        var nextStart: ContinuousClock.Instant?
        var inCrashLoop = false
        /// A running instance whose version differs from `current`, and since when.
        var mismatch: (pid: Int32, since: ContinuousClock.Instant)?
    }

    /// Exit status of a program that found another instance holding its lock.
    public static let alreadyRunningStatus: Int32 = 3

    public init(layout: AgentLayout, program: Program, arguments: [String], config: AgentConfig) {
        self.layout = layout
        self.program = program
        self.arguments = arguments
        self.config = config
    }

    /// Stops restarting the program (while it is deliberately stopped for a switch).
    public func pause() { state.withLock { $0.paused = true } }

    public func resume() { state.withLock { $0.paused = false; $0.nextStart = nil } }

    /// Whether the program runs (reaping our child if it has exited).
    public func isAlive() -> Bool {
        state.withLock { reapChild(&$0) }
        return state.withLock { $0.child != nil } || FileLock.isHeld(layout.lockFile(program))
    }

    /// Whether the child we started last is still running (false once reaped or never started).
    public func childIsRunning(_ pid: Int32) -> Bool {
        state.withLock { reapChild(&$0); return $0.child == pid }
    }

    /// "pid version" from the program's pid file, when its lock is held (so the file is live).
    public func running() -> (pid: Int32, version: String)? {
        guard FileLock.isHeld(layout.lockFile(program)), let text = try? Posix.readText(layout.pidFile(program)) else { return nil }
        let parts = text.split(separator: " ")
        guard parts.count == 2, let pid = Int32(parts[0]) else { return nil }
        return (pid, String(parts[1]))
    }

    /// One supervision step, called every poll interval.
    public func tick() {
        guard Posix.fileType(layout.stoppedMarker) == nil else { return }
        let now = clock.now
        var startNow = false
        state.withLock { state in
            reapChild(&state)
            guard !state.paused else { return }
            if state.child != nil || FileLock.isHeld(layout.lockFile(program)) {
                noteHealthyRun(&state, now)
                return
            }
            if state.nextStart == nil {
                state.restarts.removeAll { now - $0 > config.crashLoopWindow }
                let recent = state.restarts.count
                var delay = Duration.zero
                if recent > 0 {
                    delay = config.restartBackoff
                    for _ in 1..<recent where delay < config.restartBackoffMax { delay = delay * 2 }
                    delay = min(delay, config.restartBackoffMax)
                }
                if recent >= config.crashLoopRestarts && !state.inCrashLoop {
                    state.inCrashLoop = true
                    let reason = "\(program) restarted \(recent) times within \(config.crashLoopWindow); retrying every \(delay)"
                    log.error("crash loop: \(reason)", ["program": "\(program)"])
                    AgentRecords(layout: layout).setCrashLoop(program, reason: reason)
                }
                log.info("\(program) is not running; starting it in \(delay)")
                state.nextStart = now + delay
            }
            if let due = state.nextStart, now >= due {
                state.nextStart = nil
                state.restarts.append(now)
                startNow = true
            }
        }
        if startNow {
            do throws(InstallError) { try start() } catch { log.error("cannot start \(program): \(error.message)") }
        }
        restartIfStale(now)
    }

    /// Starts the program from its `current` release; returns the child's pid.
    @discardableResult
    public func start() throws(InstallError) -> Int32 {
        let pid = try Spawn.start(layout.currentBinary(program), arguments)
        state.withLock { $0.child = pid }
        log.info("started \(program) (pid \(pid))")
        return pid
    }

    /// Stops the running instance: SIGTERM, then SIGKILL after `grace`; returns once it is gone.
    public func stop(grace: Duration) {
        let child = state.withLock { $0.child }
        guard let pid = child ?? running()?.pid else { return }
        kill(pid, SIGTERM)
        if !waitGone(pid, within: grace) {
            log.warning("\(program) (pid \(pid)) ignored SIGTERM for \(grace); sending SIGKILL")
            kill(pid, SIGKILL)
            _ = waitGone(pid, within: .seconds(10))
        }
    }

    private func waitGone(_ pid: Int32, within limit: Duration) -> Bool {
        let end = clock.now + limit
        while clock.now < end {
            let childGone = state.withLock { state -> Bool in
                reapChild(&state)
                return state.child != pid
            }
            if childGone && !FileLock.isHeld(layout.lockFile(program)) { return true }
            pollPause(.milliseconds(10))
        }
        return false
    }

    private func reapChild(_ state: inout State) {
        guard let child = state.child, let exit = Spawn.reap(child) else { return }
        state.child = nil
        if exit == .code(Self.alreadyRunningStatus) {
            log.info("\(program) (pid \(child)) found another instance running")
        } else {
            log.info("\(program) (pid \(child)) \(exit)")
        }
    }

    /// A program up for a whole crash-loop window is out of its crash loop.
    private func noteHealthyRun(_ state: inout State, _ now: ContinuousClock.Instant) {
        guard state.inCrashLoop, let last = state.restarts.last, now - last > config.crashLoopWindow else { return }
        state.inCrashLoop = false
        state.restarts.removeAll()
        AgentRecords(layout: layout).setCrashLoop(program, reason: nil)
        log.info("\(program) has run for \(config.crashLoopWindow); its crash loop is over")
    }

    /// An instance running another version than `current` names (left by an interrupted
    /// switch) is replaced; it must persist a moment, since a starting instance's pid file lags.
    private func restartIfStale(_ now: ContinuousClock.Instant) {
        guard !state.withLock({ $0.paused }), let running = running(),
              let current = ReleaseStore(layout: layout).currentVersion(program)
        else { state.withLock { $0.mismatch = nil }; return }
        guard running.version != current else { state.withLock { $0.mismatch = nil }; return }
        let stale = state.withLock { state -> Bool in
            guard let seen = state.mismatch, seen.pid == running.pid else {
                state.mismatch = (running.pid, now)
                return false
            }
            return now - seen.since > .seconds(2)
        }
        guard stale else { return }
        log.info("\(program) (pid \(running.pid)) runs \(running.version) but current is \(current); restarting it")
        pause()
        stop(grace: config.stopGrace)
        resume()
        state.withLock { $0.mismatch = nil }
    }
}
