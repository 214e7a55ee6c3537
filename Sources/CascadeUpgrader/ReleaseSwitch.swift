import CascadeLog
public import CascadeInstall

private let log = Logger("switch")

/// Switches one program to a new release, run by the *other* program of the pair:
/// record → stop → switch `current` → start → wait for health → confirm (or roll back).
/// Every step is persisted first in the switch record, so a crash anywhere is settled by
/// `SwitchJournal.repair` at the next start. Fault points (debug builds) are named
/// "<program>-after-record", "-after-stop", "-after-switch", "-after-start", "-after-confirm".
public struct ReleaseSwitch: Sendable {
    public let layout: AgentLayout
    public let supervisor: PeerSupervisor
    public let config: AgentConfig
    /// How long the new release has to report healthy: the rollout's health timeout when the
    /// switch comes from one, else the agent's own `health-deadline`.
    public let healthDeadline: Duration

    public init(supervisor: PeerSupervisor, config: AgentConfig, healthDeadline: Duration? = nil) {
        self.layout = supervisor.layout
        self.supervisor = supervisor
        self.config = config
        self.healthDeadline = healthDeadline ?? config.healthDeadline
    }

    private var program: Program { supervisor.program }
    private var store: ReleaseStore { ReleaseStore(layout: layout) }
    private var journal: SwitchJournal { SwitchJournal(layout: layout) }

    /// Upgrades to `version` (already in releases/); `healthy` says whether the started pid has
    /// reported healthy. `prepared` runs once the switch is recorded (from then on no prune
    /// touches `version`). Returns the recorded result; throws only when nothing was changed.
    public func perform(
        to version: String, prepared: () -> Void = {}, healthy: (Int32) -> Bool
    ) throws(InstallError) -> UpgradeResult {
        let from = try withSwitchLock { () throws(InstallError) -> String in
            guard try journal.load(program) == nil else {
                throw InstallError(.refused, "a switch of \(program) is already in progress")
            }
            guard let from = store.currentVersion(program) else {
                throw InstallError(.layout, "\(program) has no current release in \(layout.root)")
            }
            guard from != version else { throw InstallError(.refused, "\(program) already runs \(version)") }
            _ = try ReleaseCheck.validate(layout.releaseDirectory(program, version))
            try journal.save(SwitchRecord(program: program, from: from, to: version, phase: .prepared))
            return from
        }
        prepared()
        log.info("upgrading \(program) from \(from) to \(version)", ["program": "\(program)", "from": from, "to": version])
        fault("after-record")
        supervisor.pause()
        defer { supervisor.resume() }
        supervisor.stop(grace: config.stopGrace)
        fault("after-stop")
        try withSwitchLock { () throws(InstallError) in
            try journal.save(SwitchRecord(program: program, from: from, to: version, phase: .switched))
            try store.point(program, at: version)
        }
        fault("after-switch")
        let failure: String?
        do throws(InstallError) {
            let pid = try supervisor.start()
            fault("after-start")
            failure = waitHealthy(pid, version: version, healthy: healthy)
        } catch {
            failure = error.message
        }
        if let failure {
            return try rollBack(from: from, to: version, reason: failure)
        }
        try withSwitchLock { () throws(InstallError) in
            try journal.save(SwitchRecord(program: program, from: from, to: version, phase: .confirmed))
        }
        fault("after-confirm")
        let result = UpgradeResult(program: program, version: version, outcome: .upgraded, reason: "upgraded from \(from)")
        try withSwitchLock { () throws(InstallError) in
            try store.point(program, current: false, at: from)
            try AgentRecords(layout: layout).recordResult(result)
            try journal.clear(program)
            logFreed(DiskHygiene(layout: layout).afterSwitch(program))
        }
        log.info("\(program) upgraded from \(from) to \(version)", ["program": "\(program)", "from": from, "to": version])
        return result
    }

    /// nil when healthy within the deadline, else why not.
    private func waitHealthy(_ pid: Int32, version: String, healthy: (Int32) -> Bool) -> String? {
        let clock = ContinuousClock()
        let deadline = clock.now + healthDeadline
        while clock.now < deadline {
            if healthy(pid) { return nil }
            if !supervisor.childIsRunning(pid) { return "\(program) \(version) exited before reporting healthy" }
            pollPause(.milliseconds(20))
        }
        return "\(program) \(version) did not report healthy within \(healthDeadline)"
    }

    private func rollBack(from: String, to version: String, reason: String) throws(InstallError) -> UpgradeResult {
        log.warning("rolling \(program) back to \(from): \(reason)", ["program": "\(program)", "to": from])
        supervisor.stop(grace: config.stopGrace)
        let result = UpgradeResult(program: program, version: version, outcome: .rolledBack, reason: reason)
        try withSwitchLock { () throws(InstallError) in
            try store.point(program, at: from)
            let records = AgentRecords(layout: layout)
            try records.recordFailure(program, version: version, reason: reason)
            try records.recordResult(result)
            try journal.clear(program)
            // The rolled-back release and its download are not kept: it is not tried again
            // unless asked, and then it is staged afresh.
            logFreed(DiskHygiene(layout: layout).afterSwitch(program))
        }
        do throws(InstallError) { try supervisor.start() } catch {
            // The supervision loop keeps trying (with backoff) once this switch resumes it.
            log.error("cannot restart \(program) \(from) after the rollback: \(error.message)")
        }
        return result
    }

    private func logFreed(_ freed: [FreedPath]) {
        guard !freed.isEmpty else { return }
        let bytes = freed.reduce(0) { $0 + $1.bytes }
        log.info("pruned \(freed.map(\.path).joined(separator: ", ")) (\(bytes) bytes)")
    }

    private func fault(_ step: String) {
        FaultPoint.hit("\(program.rawValue)-\(step)", layout: layout)
    }

    private func withSwitchLock<T>(_ body: () throws(InstallError) -> T) throws(InstallError) -> T {
        let lock = try FileLock.acquireWaiting(layout.switchLock)
        defer { withExtendedLifetime(lock) {} }
        return try body()
    }
}
