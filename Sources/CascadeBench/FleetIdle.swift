import CascadeAPI
import CascadeNet
import CascadeRPC
import Foundation
import Synchronization

/// `fleet-idle`: N lightweight agent sessions (FleetIdleSession.swift) against a coordinator
/// child: its RSS per session, the heartbeats per second it absorbs, and how long all N take
/// to come back after it is killed and restarted on the same data directory and port.
public enum FleetIdle {
    public static func run(_ arguments: ArraySlice<String>) async throws {
        let options = try Options(arguments, flags: ["keep"])
        let count = try options.int("sessions", default: 10_000)
        let subnets = try options.int("subnets", default: 50)
        let binary = try options.string("coordinator-binary", default: defaultCoordinatorBinary())
        let reportInterval = try options.string("report-interval", default: "5s")
        let burst = try parseDuration(options.string("burst-interval", default: "1s"))
        let burstWindow = try parseDuration(options.string("burst-window", default: "5s"))
        let settle = try parseDuration(options.string("settle", default: "10s"))
        let reconnectLimit = try parseDuration(options.string("reconnect-timeout", default: "180s"))
        let specs = try SimAgentSpec.fleet(agents: count, subnets: subnets)

        let fdLimit = raiseFileLimit()
        ChildRegistry.shared.installSignalHandlers()
        let work = try makeWorkDirectory(try? options.string("work-dir"), prefix: "cascade-fleet-idle")
        // The coordinator's database: on disk by default, as deployed (every commit fsyncs).
        let dataDirectory = try makeWorkDirectory(options.string("coordinator-data", default: work), prefix: "coordinator-data")
        let say: @Sendable (String) -> Void = { line in emitLine("fleet-idle: \(line)", to: 2) }
        say("\(count) sessions from \(subnets) subnets, fd limit \(fdLimit), work \(work), coordinator data \(dataDirectory)")
        guard fdLimit > count + 200 else { throw BenchError("the open-file limit \(fdLimit) is too low for \(count) sessions") }

        let setupStart = MonotonicTime.now()
        let pki = try FleetPKI(directory: "\(work)/certs")
        let coordinatorTLS = try pki.issue(role: "coordinator", id: "main")
        let agentTLS = try await pki.issueAgents(specs.map { ($0.id, $0.ip) })
        let release = try FleetRelease(version: "1.1.0", size: 4096, directory: work)  // only for --trusted-key
        say("issued \(agentTLS.count + 2) certificates in \(format(MonotonicTime.now().seconds(since: setupStart))) s")
        let coordinatorArguments = [
            "--data", dataDirectory, "--report-interval", reportInterval, "--ca", pki.caFile, "--cert", coordinatorTLS.certificateChainFile,
            "--key", coordinatorTLS.privateKeyFile, "--trusted-key", release.publicKeyFile,
        ]
        let first = try await CoordinatorProcess.start(
            binary: binary, arguments: coordinatorArguments + ["--listen", "127.0.0.1:0"], logFile: "\(work)/coordinator.log")
        emitLine("coordinator pid \(first.pid) listening on \(first.address)")
        // The restart: same data directory, same port.
        let restartArguments = coordinatorArguments + ["--listen", "127.0.0.1:\(first.address.port)"]

        let run = IdleRun(say: say)
        var coordinator = first
        var failure: (any Error)?
        do {
            let contextStart = MonotonicTime.now()
            let sessions = try specs.map { spec in
                try IdleSession(
                    id: spec.id, address: spec.ip, coordinator: first.address,
                    tls: TLSContext(configuration: agentTLS[spec.id]!, side: .client),
                    backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(10)))
            }
            say("made \(count) TLS client contexts in \(format(MonotonicTime.now().seconds(since: contextStart))) s")
            coordinator = try await run.measure(
                sessions: sessions, first: first, restart: { try await CoordinatorProcess.start(
                    binary: binary, arguments: restartArguments, logFile: "\(work)/coordinator-restarted.log") },
                pki: pki, interval: try parseDuration(reportInterval), burst: burst, burstWindow: burstWindow, settle: settle, reconnectLimit: reconnectLimit)
        } catch {
            failure = error
            say("failed: \(error); coordinator log in \(work)")
        }
        await run.stopSessions()
        await coordinator.stop()
        // The first coordinator, or a restarted one a failure left behind.
        ChildRegistry.shared.killAll()
        if options.flag("keep") || failure != nil {
            say("kept \(work) and \(dataDirectory)")
        } else {
            try? FileManager.default.removeItem(atPath: work)
            try? FileManager.default.removeItem(atPath: dataDirectory)
        }
        if let failure { throw failure }
    }
}

/// The phases of one fleet-idle run, with the tasks it must stop at the end.
final class IdleRun: Sendable {
    let say: @Sendable (String) -> Void
    let tasks = Mutex<[Task<Void, Never>]>([])

    init(say: @escaping @Sendable (String) -> Void) {
        self.say = say
    }

    func stopSessions() async {
        let all = tasks.withLock { tasks -> [Task<Void, Never>] in
            defer { tasks = [] }
            return tasks
        }
        for task in all { task.cancel() }
        for task in all { await task.value }
    }

    private func spawn(_ body: @escaping @Sendable () async -> Void) {
        tasks.withLock { $0.append(Task { await body() }) }
    }

    /// Connected sessions, and those connected since `since`.
    private func connected(_ sessions: [IdleSession], since: MonotonicTime? = nil) -> Int {
        sessions.filter { session in
            let state = session.state.withLock { $0 }
            guard state.connected else { return false }
            guard let since else { return true }
            return (state.connectedAt ?? since) > since
        }.count
    }

    func measure(
        sessions: [IdleSession], first: CoordinatorProcess, restart: @Sendable () async throws -> CoordinatorProcess,
        pki: FleetPKI, interval: Duration, burst: Duration, burstWindow: Duration, settle: Duration, reconnectLimit: Duration
    ) async throws -> CoordinatorProcess {
        try await Task.sleep(for: .seconds(1))
        let bare = first.sample
        let op = try FleetOperator(pki: pki, coordinator: first.address)
        defer { op.client.close() }

        // Ramp up in batches, so the first connections are not a handshake storm (that is
        // measured later, on the restart).
        let connectStart = MonotonicTime.now()
        let driver = HeartbeatDriver(sessions: sessions)
        driver.intervalMs.store(milliseconds(interval), ordering: .relaxed)
        spawn { await driver.run() }
        for start in stride(from: 0, to: sessions.count, by: 500) {
            for session in sessions[start..<min(sessions.count, start + 500)] { spawn { await session.run() } }
            let target = min(sessions.count, start + 500)
            let deadline = ContinuousClock.now + .seconds(60)
            while connected(sessions) < target * 9 / 10 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))  // polling, bounded by the deadline
            }
        }
        guard try await waitFor(sessions.count, within: .seconds(120), { self.connected(sessions) }) else {
            throw BenchError("only \(connected(sessions)) of \(sessions.count) sessions connected within 120 s of the ramp")
        }
        let connectSeconds = MonotonicTime.now().seconds(since: connectStart)
        say("\(sessions.count) sessions connected in \(format(connectSeconds)) s (ramped 500 at a time)")

        try await Task.sleep(for: settle)
        let idle = first.sample
        let perSessionKiB = Double(idle.rssKiB - bare.rssKiB) / Double(sessions.count)
        say("coordinator RSS \(mib(bare.rssKiB)) MiB bare, \(mib(idle.rssKiB)) MiB with \(sessions.count) sessions: \(format(perSessionKiB)) KiB per session")

        // Heartbeat burst: every session reports every `burst`; the coordinator's stored idle
        // ratios (each heartbeat's sequence number) say how many it absorbed.
        driver.intervalMs.store(milliseconds(burst), ordering: .relaxed)
        try await Task.sleep(for: .seconds(2))
        let (absorbed1, t1, sent1) = try await absorbed(op, sessions)
        let cpu1 = first.sample.cpuSeconds
        try await Task.sleep(for: burstWindow)
        let (absorbed2, t2, sent2) = try await absorbed(op, sessions)
        let cpu2 = first.sample.cpuSeconds
        driver.intervalMs.store(milliseconds(interval), ordering: .relaxed)
        let seconds = t2.seconds(since: t1)
        let absorbedRate = Double(absorbed2 - absorbed1) / seconds
        let offeredRate = Double(sent2 - sent1) / seconds
        say("heartbeats: offered \(format(offeredRate))/s, absorbed \(format(absorbedRate))/s, coordinator CPU \(format((cpu2 - cpu1) / seconds)) cores")
        // A backlog left by the burst would slow the restart below: wait until it has drained.
        let drainStart = MonotonicTime.now()
        var backlog = sent2 - min(sent2, absorbed2)
        while backlog > UInt64(sessions.count) && MonotonicTime.now().seconds(since: drainStart) < 120 {
            try await Task.sleep(for: .seconds(1))
            let (absorbedNow, _, sentNow) = try await absorbed(op, sessions)
            backlog = sentNow - min(sentNow, absorbedNow)
        }
        let drainSeconds = MonotonicTime.now().seconds(since: drainStart)
        say("burst backlog drained in \(format(drainSeconds)) s (\(backlog) heartbeats behind)")
        try await Task.sleep(for: .seconds(3))
        let peak = first.sample

        // Kill -9 and restart on the same data directory and port.
        let killed = MonotonicTime.now()
        first.killNow()
        let second = try await restart()
        let listening = MonotonicTime.now()
        emitLine("coordinator pid \(second.pid) listening on \(second.address) (restarted)")
        var lastReport = listening
        let all = try await waitFor(sessions.count, within: reconnectLimit) {
            let now = self.connected(sessions, since: killed)
            if MonotonicTime.now().seconds(since: lastReport) >= 5 {
                lastReport = MonotonicTime.now()
                self.say("reconnected \(now) of \(sessions.count) after \(format(lastReport.seconds(since: listening))) s")
            }
            return now
        }
        let done = MonotonicTime.now()
        let back = connected(sessions, since: killed)
        let resumed = sessions.filter { $0.state.withLock { $0.connected && $0.resumed } }.count
        let lastConnect = sessions.compactMap { $0.state.withLock { $0.connectedAt } }.max() ?? done
        let reconnectSeconds = all ? lastConnect.seconds(since: listening) : -1
        say("\(back) of \(sessions.count) sessions back \(format(lastConnect.seconds(since: listening))) s after the restart listened (\(format(listening.seconds(since: killed))) s down); \(resumed) resumed TLS sessions")
        let after = second.sample

        let fields: [(String, String)] = [
            ("sessions", "\(sessions.count)"), ("connect_s", format(connectSeconds)),
            ("coord_rss_bare_mib", mib(bare.rssKiB)), ("coord_rss_mib", mib(idle.rssKiB)), ("rss_per_session_kib", format(perSessionKiB)),
            ("coord_hwm_mib", mib(peak.hwmKiB)),
            ("heartbeats_offered_per_s", format(offeredRate)), ("heartbeats_absorbed_per_s", format(absorbedRate)),
            ("burst_cpu_cores", format((cpu2 - cpu1) / seconds)), ("burst_drain_s", format(drainSeconds)),
            ("down_s", format(listening.seconds(since: killed))), ("reconnected", "\(back)"),
            ("reconnect_s", format(reconnectSeconds)), ("resumed", "\(resumed)"),
            ("restart_rss_mib", mib(after.rssKiB)), ("restart_cpu_s", format(after.cpuSeconds)),
            ("sim_hwm_mib", mib(ProcSample.own.hwmKiB)),
        ]
        emitLine("result " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
        guard all else { throw BenchError("only \(back) of \(sessions.count) sessions reconnected within \(reconnectLimit)") }
        return second
    }

    /// Sum of the heartbeat counts the coordinator stored, when it answered, and the sum sent.
    private func absorbed(_ op: FleetOperator, _ sessions: [IdleSession]) async throws -> (UInt64, MonotonicTime, UInt64) {
        // A busy coordinator may miss a keepalive: ask again on a fresh connection.
        var agents: [AgentInfo] = []
        for attempt in 1...3 {
            do {
                agents = try await op.agents()
                break
            } catch where attempt < 3 {
                say("listing agents failed (\(error)); asking again")
            }
        }
        let at = MonotonicTime.now()
        let sent = sessions.reduce(UInt64(0)) { $0 + UInt64($1.written.load(ordering: .relaxed)) }
        return (agents.reduce(UInt64(0)) { $0 + UInt64($1.idle.cpuPPM) }, at, sent)
    }

    private func waitFor(_ target: Int, within limit: Duration, _ count: () -> Int) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if count() >= target { return true }
            try await Task.sleep(for: .milliseconds(50))  // polling, bounded by the deadline
        }
        return count() >= target
    }
}

func milliseconds(_ duration: Duration) -> Int {
    Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
}
