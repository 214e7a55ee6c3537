import CascadeAgent
import CascadeInstall
import CascadeTestSupport
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An installed agent root in a temporary directory and the process pair running on it. The
/// pair runs in process groups of its own (the daemons never leave their group), so `stop`
/// kills every process any test started, whatever restarted whom.
final class AgentPair: Sendable {
    let directory: TemporaryDirectory
    let layout: AgentLayout
    let logFile: String
    private let groups = Mutex<[Int32]>([])
    private let children = Mutex<[Int32]>([])

    /// Timings short enough for tests; the health deadline is what rollbacks wait for.
    static let config = """
        health-deadline = 4
        stop-grace = 1
        restart-backoff = 0.1
        restart-backoff-max = 0.4
        crash-loop-restarts = 3
        crash-loop-window = 20
        poll-interval = 0.05
        """

    /// Installs `initial` (a version, or a bundle already made) into a fresh root.
    init(initial version: String = "1.0", behavior: [String] = []) throws {
        directory = try TemporaryDirectory(prefix: "cascade-agent")
        layout = AgentLayout(root: directory.file("root"))
        logFile = directory.file("pair.log")
        let bundle = try TestBundles.make(version, in: directory, behavior: behavior)
        _ = try AgentInstaller.install(root: layout.root, bundle: bundle)
        try Self.config.write(toFile: layout.configFile, atomically: true, encoding: .utf8)
    }

    deinit { stop() }

    /// Starts the upgrader as systemd would (it starts the main program), in a new process
    /// group; returns its pid.
    @discardableResult
    func start(environment extra: [String: String] = [:], standby: Bool = false) throws -> Int32 {
        let binary = layout.currentBinary(.upgrader)
        let pid = try spawnInOwnGroup(binary, ["--root", layout.root] + (standby ? ["--standby"] : []),
                                      logFile: logFile, environment: extra)
        groups.withLock { $0.append(pid) }
        children.withLock { $0.append(pid) }
        return pid
    }

    /// SIGKILLs every process group this pair started (and any pid the root names), then
    /// reaps our own children.
    func stop() {
        for group in groups.withLock({ $0 }) { kill(-group, SIGKILL) }
        for program in Program.allCases {
            if let running = status(program).running, FileLock.isHeld(layout.lockFile(program)) { kill(running.pid, SIGKILL) }
        }
        for child in children.withLock({ $0 }) { _ = Spawn.wait(child) }
        children.withLock { $0.removeAll() }
    }

    func status(_ program: Program) -> ProgramStatus {
        AgentStatus.read(layout).first { $0.program == program }!
    }

    var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// Both programs run the versions their `current` links name, with no switch pending.
    func settled(main: String, upgrader: String) -> (main: Int32, upgrader: Int32)? {
        let statuses = AgentStatus.read(layout)
        let mainStatus = statuses[0]
        let upgraderStatus = statuses[1]
        guard let mainRun = mainStatus.running, let upgraderRun = upgraderStatus.running,
              mainStatus.current == main, mainRun.version == main, mainStatus.switchInProgress == nil,
              upgraderStatus.current == upgrader, upgraderRun.version == upgrader, upgraderStatus.switchInProgress == nil
        else { return nil }
        return (mainRun.pid, upgraderRun.pid)
    }

    /// Waits until `settled` holds, failing with the pair's log.
    func waitSettled(main: String, upgrader: String, within limit: Duration = .seconds(20)) async throws -> (main: Int32, upgrader: Int32) {
        do {
            return try await waitUntil(within: limit, "main \(main) and upgrader \(upgrader) running") {
                self.settled(main: main, upgrader: upgrader)
            }
        } catch {
            throw TestFailure("\(error)\nstatus:\n\(AgentStatus.render(AgentStatus.read(layout), root: layout.root))\nlog:\n\(log)")
        }
    }

    /// Runs the built `cascade-agent` with `arguments`; returns its exit status and the process
    /// (whose output lines can be awaited).
    func cli(_ arguments: [String], within limit: Duration = .seconds(30)) async throws -> (status: Int32, process: ChildProcess) {
        let process = try ChildProcess(try builtProduct("cascade-agent"), arguments)
        return (try await process.exitStatus(within: limit), process)
    }
}
