import CascadeLog
public import CascadeInstall
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

private let log = Logger("upgrader")

/// The upgrade program: supervises the main program, answers on the control socket, and
/// switches the main program to a release the main program hands it.
public final class UpgraderDaemon: Sendable {
    public let layout: AgentLayout
    public let version: String
    private let config: AgentConfig
    private let supervisor: PeerSupervisor
    private let board = HealthBoard()
    private let upgrading = Mutex(false)

    init(layout: AgentLayout, version: String, config: AgentConfig) {
        self.layout = layout
        self.version = version
        self.config = config
        supervisor = PeerSupervisor(layout: layout, program: .main, arguments: ["run", "--root", layout.root], config: config)
    }

    /// Runs the upgrader until it is killed; returns an exit status only when it cannot start.
    public static func run(root: String, standby: Bool) -> Int32 {
        let layout = AgentLayout(root: root)
        // A control client that hangs up early must cost an EPIPE, not the upgrader.
        signal(SIGPIPE, SIG_IGN)
        do throws(InstallError) {
            guard let (lock, tookOver) = try PairStartup.lock(layout, .upgrader, standby: standby) else {
                log.info("another upgrader already runs for \(layout.root)")
                return PeerSupervisor.alreadyRunningStatus
            }
            // A standby that outlived a `cascade-agent stop` must not bring the pair back.
            if tookOver && Posix.fileType(layout.stoppedMarker) != nil { return 0 }
            if TestBehavior.active(.exitAtStart, for: .upgrader) {
                log.info("test behaviour: exiting at start")
                return 1
            }
            unlink(layout.stoppedMarker)
            let config = try AgentConfig.load(layout)
            try PairStartup.repair(layout, .upgrader)
            try PairStartup.reexecIfStale(layout, .upgrader)
            guard let version = ReleaseCheck.runningVersion() else {
                throw InstallError(.layout, "the upgrader must run from a release under \(layout.root)")
            }
            try PairStartup.writePidFile(layout, .upgrader, version: version)
            let daemon = UpgraderDaemon(layout: layout, version: version, config: config)
            log.info("upgrader \(version) running for \(layout.root)", ["version": version, "root": layout.root])
            var server: ControlServer?
            if TestBehavior.active(.neverHealthy, for: .upgrader) {
                log.info("test behaviour: not answering on the control socket")
            } else {
                server = try ControlServer(path: layout.socketPath)
                server?.serve { daemon.handle($0) }
            }
            while true {
                withExtendedLifetime((lock, server)) { daemon.supervisor.tick() }
                pollPause(config.pollInterval)
            }
        } catch {
            log.error("cannot run: \(error.message)")
            return 1
        }
    }

    /// Answers one control request (ControlProtocol).
    func handle(_ line: String) -> String {
        let words = line.split(separator: " ").map(String.init)
        switch words.first {
        case "PING":
            return "OK \(getpid()) \(version)"
        case "HEALTHY" where words.count == 3:
            guard let pid = Int32(words[1]) else { return "ERR a HEALTHY report needs a pid" }
            board.report(pid: pid, version: words[2])
            return "OK"
        case "UPGRADE-MAIN" where words.count >= 2:
            // Options after the version: `retry`, and `health=<seconds>` (the rollout's health
            // timeout, 1 s to 1 day; absent: this agent's own health-deadline).
            var health: Duration?
            if let option = words.dropFirst(2).first(where: { $0.hasPrefix("health=") }) {
                guard let seconds = Int(option.dropFirst(7)), (1...86_400).contains(seconds) else {
                    return "ERR \"\(option.prefix(40))\" is not a health timeout of 1 to 86400 seconds"
                }
                health = .seconds(seconds)
            }
            return requestUpgrade(words[1], retry: words.dropFirst(2).contains("retry"), health: health)
        default:
            return "ERR unknown request \"\(line.prefix(40))\""
        }
    }

    private func requestUpgrade(_ target: String, retry: Bool, health: Duration?) -> String {
        guard ReleaseCheck.isValidVersion(target) else { return "ERR \"\(target.prefix(40))\" is not a valid version" }
        let records = AgentRecords(layout: layout)
        if let reason = records.failures(.main)[target] {
            guard retry else { return "ERR \(target) failed before (\(reason)); ask again with --retry to try it" }
            try? records.forgetFailure(.main, version: target)
        }
        guard upgrading.withLock({ busy in busy ? false : { busy = true; return true }() }) else {
            return "ERR an upgrade of the main program is already running"
        }
        // Checked here so the caller hears about a broken release at once, before any downtime.
        let binary = "\(layout.releaseDirectory(.main, target))/bin/\(Program.main.binaryName)"
        do throws(InstallError) {
            _ = try ReleaseCheck.validate(layout.releaseDirectory(.main, target))
            let test = try Spawn.run(binary, ["--self-test"], deadline: .seconds(30))
            guard test.exit == .code(0), test.output.hasPrefix("ok \(target)") else {
                throw InstallError(.invalidRelease, "the main program of \(target) failed its self-test (it \(test.exit))")
            }
        } catch {
            upgrading.withLock { $0 = false }
            return "ERR \(error.message)"
        }
        // The reply waits until the switch is recorded: from then on no prune (a switch's or
        // `cascade-agent gc`'s) removes the release, so the caller may let go of it.
        let decided = DispatchSemaphore(value: 0)
        let refusal = Mutex<String?>(nil)
        Thread.detachNewThread { [self] in
            defer { upgrading.withLock { $0 = false } }
            var recorded = false
            let change = ReleaseSwitch(supervisor: supervisor, config: config, healthDeadline: health)
            do throws(InstallError) {
                _ = try change.perform(to: target, prepared: { recorded = true; decided.signal() }) { pid in
                    self.board.isHealthy(pid: pid, version: target)
                }
            } catch {
                log.warning("upgrade to \(target) refused: \(error.message)")
                try? AgentRecords(layout: layout).recordResult(
                    UpgradeResult(program: .main, version: target, outcome: .refused, reason: error.message))
                if !recorded {
                    refusal.withLock { $0 = error.message }
                    decided.signal()
                }
            }
        }
        decided.wait()
        if let reason = refusal.withLock({ $0 }) { return "ERR \(reason)" }
        return "OK accepted"
    }
}
