import CascadeLog
public import CascadeInstall
import CascadeUpgrader
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

private let log = Logger("main")

/// What the fleet runtime (a later issue) plugs into the main program.
public struct AgentHooks: Sendable {
    /// Extra readiness before the main program reports healthy (e.g. its session with the
    /// leader or coordinator is re-established). Polled until true; a release that never gets
    /// there is rolled back by the upgrader at its health deadline.
    public var isReady: @Sendable () -> Bool
    /// Long-running services, each started on its own thread after the self-check.
    public var services: [@Sendable (AgentContext) -> Void]

    public init(isReady: @escaping @Sendable () -> Bool = { true }, services: [@Sendable (AgentContext) -> Void] = []) {
        self.isReady = isReady
        self.services = services
    }
}

/// What a service of the main program gets: where it runs, its version, and the way to hand a
/// verified release to the upgrader.
public struct AgentContext: Sendable {
    public let layout: AgentLayout
    public let version: String
    public var handoff: ReleaseHandoff { ReleaseHandoff(layout: layout) }
}

/// The main program (`cascade-agent run`): supervises the upgrader, reports its own health to
/// it, and once its own release is confirmed, upgrades the upgrader to the same release.
public final class AgentDaemon: Sendable {
    /// When this process started (the slow-start test behaviour counts from it).
    static let started = ContinuousClock.now
    public let layout: AgentLayout
    public let version: String
    private let config: AgentConfig
    private let hooks: AgentHooks
    private let supervisor: PeerSupervisor
    /// The upgrader pid our health was last reported to (each new upgrader hears it once).
    private let reportedTo = Mutex<Int32?>(nil)

    init(layout: AgentLayout, version: String, config: AgentConfig, hooks: AgentHooks) {
        _ = Self.started  // a static is set on first use: use it at start
        self.layout = layout
        self.version = version
        self.config = config
        self.hooks = hooks
        supervisor = PeerSupervisor(layout: layout, program: .upgrader, arguments: ["--root", layout.root], config: config)
    }

    /// Runs the main program until it is killed; returns an exit status only when it cannot start.
    public static func run(root: String, hooks: AgentHooks) -> Int32 {
        let layout = AgentLayout(root: root)
        // An upgrader that dies mid-reply must cost an EPIPE, not the main program.
        signal(SIGPIPE, SIG_IGN)
        do throws(InstallError) {
            guard let (lock, _) = try PairStartup.lock(layout, .main, standby: false) else {
                log.info("another main program already runs for \(layout.root)")
                return PeerSupervisor.alreadyRunningStatus
            }
            if TestBehavior.active(.exitAtStart, for: .main) {
                log.info("test behaviour: exiting at start")
                return 1
            }
            unlink(layout.stoppedMarker)
            let config = try AgentConfig.load(layout)
            try PairStartup.repair(layout, .main)
            try PairStartup.reexecIfStale(layout, .main)
            guard let release = ReleaseCheck.runningReleaseDirectory() else {
                throw InstallError(.layout, "the main program must run from a release under \(layout.root)")
            }
            // The self-check: this release is complete and the state directory takes writes.
            let version = try ReleaseCheck.validate(release)
            try PairStartup.writePidFile(layout, .main, version: version)
            let daemon = AgentDaemon(layout: layout, version: version, config: config, hooks: hooks)
            log.info("main program \(version) running for \(layout.root)", ["version": version, "root": layout.root])
            let context = AgentContext(layout: layout, version: version)
            for service in hooks.services {
                Thread.detachNewThread { service(context) }
            }
            while true {
                withExtendedLifetime(lock) {
                    daemon.supervisor.tick()
                    daemon.reportHealth()
                    daemon.upgradeUpgraderIfBehind()
                }
                pollPause(config.pollInterval)
            }
        } catch {
            log.error("cannot run: \(error.message)")
            return 1
        }
    }

    /// Tells each new upgrader instance once that this main program is healthy.
    private func reportHealth() {
        guard let upgrader = supervisor.running(), reportedTo.withLock({ $0 }) != upgrader.pid else { return }
        guard !TestBehavior.active(.neverHealthy, for: .main), hooks.isReady() else { return }
        if TestBehavior.active(.slowHealthy, for: .main), ContinuousClock.now - Self.started < .seconds(6) { return }
        let reply = try? ControlSocket.request(layout.socketPath, "HEALTHY \(getpid()) \(version)", timeout: .seconds(2))
        guard reply == "OK" else { return }
        reportedTo.withLock { $0 = upgrader.pid }
    }

    /// The second half of an upgrade (DESIGN.md §1 step 5): once this release is confirmed
    /// (no switch of the main program pending), bring the upgrader to the same release.
    private func upgradeUpgraderIfBehind() {
        let store = ReleaseStore(layout: layout)
        let journal = SwitchJournal(layout: layout)
        let records = AgentRecords(layout: layout)
        guard store.currentVersion(.main) == version,
              let upgraderCurrent = store.currentVersion(.upgrader), upgraderCurrent != version,
              records.failures(.upgrader)[version] == nil,
              (try? journal.load(.main)) == .some(nil), (try? journal.load(.upgrader)) == .some(nil),
              let running = supervisor.running(), running.version == upgraderCurrent,
              reportedTo.withLock({ $0 }) == running.pid
        else { return }
        do throws(InstallError) {
            try prepareUpgraderRelease()
        } catch {
            log.error("cannot prepare the upgrader of \(version): \(error.message)")
            discardUpgraderRelease()
            try? records.recordFailure(.upgrader, version: version, reason: error.message)
            try? records.recordResult(UpgradeResult(program: .upgrader, version: version, outcome: .refused, reason: error.message))
            return
        }
        let change = ReleaseSwitch(supervisor: supervisor, config: config)
        do throws(InstallError) {
            let target = version
            let socket = layout.socketPath
            _ = try change.perform(to: version) { pid in
                (try? ControlSocket.request(socket, "PING", timeout: .seconds(1))) == "OK \(pid) \(target)"
            }
        } catch {
            log.warning("the upgrader was not switched to \(version): \(error.message)")
        }
    }

    /// The copy of a refused upgrader release goes (it is made afresh if ever asked again).
    private func discardUpgraderRelease() {
        guard let lock = try? FileLock.acquireWaiting(layout.switchLock) else { return }
        defer { withExtendedLifetime(lock) {} }
        ReleaseStore(layout: layout).discard(.upgrader, version)
    }

    /// Side by side: a copy of this release in the upgrader's directory, whose upgrader passes
    /// its self-test before anything is stopped.
    private func prepareUpgraderRelease() throws(InstallError) {
        let lock = try FileLock.acquireWaiting(layout.switchLock)
        defer { withExtendedLifetime(lock) {} }
        let directory = layout.releaseDirectory(.upgrader, version)
        if (try? ReleaseCheck.validate(directory)) != version {
            try ReleaseStore(layout: layout).copyToUpgrader(version)
        }
        let test = try Spawn.run("\(directory)/bin/\(Program.upgrader.binaryName)", ["--self-test"], deadline: .seconds(30))
        guard test.exit == .code(0), test.output.hasPrefix("ok \(version)") else {
            throw InstallError(.invalidRelease, "the upgrader of \(version) failed its self-test (it \(test.exit))")
        }
    }
}
