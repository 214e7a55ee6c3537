import CascadeLog
import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC

/// The agent's fleet side (DESIGN.md §1): registers with the coordinator and holds its session,
/// serves `cascade.Leader` when it leads, follows its leader when it is a member, downloads and
/// verifies releases, and hands verified ones to a `ReleaseInstaller`. It never restarts
/// processes itself.
///
/// ```swift
/// let runtime = try AgentRuntime(configuration: config, installer: installer)
/// let running = Task { try await runtime.run() }   // returns after shutdown()
/// ...
/// await runtime.shutdown()
/// ```
public final class AgentRuntime: Sendable {
    public let configuration: AgentRuntimeConfiguration
    let installer: any ReleaseInstaller
    let verifier: ReleaseVerifier
    let staging: StagingArea
    let floor: InstallFloor
    let idle: IdleSampler
    let clientTLS: TLSContext
    let coordinator: RPCClient
    let server: RPCServer

    struct CoreState: Sendable {
        var agentID = ""
        var assignment: Assignment?
        var epoch: UInt64 = 0
        var mainVersion: String
        var progress: AgentProgress?
        var reportInterval: Duration
        /// The coordinator (or leader) said where to fetch from, for this rollout.
        var fetchHint: FetchHint?
        /// The rollout whose upgrade task runs now, and the task.
        var upgrade: (rolloutID: UInt64, task: Task<Void, Never>)?
        /// What the coordinator said each recent rollout installs, by rollout id.
        var expectations: [UInt64: RolloutExpectation] = [:]
        /// A leader's order that came before the coordinator's expectation for its rollout.
        var parkedOrder: (UpgradeOrder, OrderOrigin)?
        /// Rollouts the coordinator paused: a finished download waits here before installing.
        var pausedRollouts: Set<UInt64> = []
        var lastBytesReport = ContinuousClock.now
        var stopped = false
    }

    let core: Locked<CoreState>
    let leader = Locked(LeaderState())
    let counters = Locked(Counters())
    /// The agent's own progress changed (reports go out).
    let progressChanged = ChangeSignal()
    /// As a leader: a member's state changed (a cluster batch goes out).
    let clusterChanged = ChangeSignal()
    let stopSignal = ChangeSignal()
    /// A rollout was paused or resumed (a held install looks again).
    let pauseChanged = ChangeSignal()
    /// Tasks shutdown() cancels and awaits, by a serial number (each removes itself when done).
    let background = Locked<(next: Int, tasks: [Int: Task<Void, Never>])>((0, [:]))
    let memberLink = Locked<(target: LeaderTarget, task: Task<Void, Never>)?>(nil)
    let leaderClients = Locked<[String: RPCClient]>([:])

    public init(configuration: AgentRuntimeConfiguration, installer: any ReleaseInstaller) throws {
        self.configuration = configuration
        self.installer = installer
        verifier = ReleaseVerifier(trustedKeys: configuration.releaseKeys)
        staging = try StagingArea(stateDirectory: configuration.stateDirectory)
        floor = try InstallFloor(stateDirectory: configuration.stateDirectory, runningVersion: configuration.mainVersion)
        idle = IdleSampler(override: configuration.idleOverride)
        clientTLS = try TLSContext(configuration: configuration.tls, side: .client)
        let serverTLS = try TLSContext(configuration: configuration.tls, side: .server)
        coordinator = RPCClient(
            target: configuration.coordinatorAddress, tls: clientTLS,
            from: Self.sourceAddress(configuration, toward: configuration.coordinatorAddress), expectedRole: .coordinator,
            backoff: configuration.retryBackoff)
        let bind = try SocketAddress(ip: configuration.bindAddress, port: configuration.memberPort)
        let router = RPCRouter()
        // As a leader: members' refused handshakes and denied calls are warnings, rate-limited.
        let refusals = RateLimitedLog(configuration.logger, limit: 5, window: .seconds(10))
        router.onPermissionDenied { call in
            let from = call.address.map { "\($0)" } ?? "unknown"
            refusals.log(.warning, key: "permission-denied \(call.method)", "permission denied: \(call.message) (from \(from))",
                         fields: [LogField("method", call.method), LogField("peer", call.peer?.uri ?? "none"), LogField("address", from)])
        }
        server = try RPCServer(bindingTo: bind, tls: serverTLS, router: router, observer: configuration.metrics.rpc, onHandshakeFailure: { failure in
            var fields = [LogField("peer", failure.peer.map { "\($0)" } ?? "unknown")]
            if let certificate = failure.peerCertificate { fields.append(LogField("certificate", certificate)) }
            refusals.log(.warning, key: failure.reason, failure.message, fields: fields)
        })
        core = Locked(CoreState(
            mainVersion: configuration.mainVersion, progress: configuration.resume,
            reportInterval: configuration.defaultReportInterval))
        registerLeaderMethods(on: router)
        configuration.metrics.rpc.recognize(router.methodNames)
    }

    /// The port members reach this agent on (the bound one when configured as 0).
    public var memberPort: UInt16 { server.localAddress.port }

    /// Serves members, registers and keeps the coordinator session until `shutdown()` (or until
    /// the calling task is cancelled, which shuts down too).
    public func run() async throws {
        guard !core.value.stopped else { return }
        server.start()
        startBackground { await self.idle.run(every: self.configuration.idleSampleInterval) }
        startBackground { await self.runCoordinatorLink() }
        await withTaskCancellationHandler {
            var seen = stopSignal.generation
            while !core.value.stopped && !Task.isCancelled {
                seen = await stopSignal.wait(after: seen)
            }
        } onCancel: {
            Task { await self.shutdown() }
        }
    }

    /// Stops everything this runtime started: links, downloads, the member server. An install
    /// in progress is left to finish (the installer owns that switch).
    public func shutdown() async {
        let first = core.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        let tasks = background.withLock { background -> [Task<Void, Never>] in
            defer { background.tasks = [:] }
            return Array(background.tasks.values)
        }
        for task in tasks { task.cancel() }
        stopMemberLink()
        deactivateLeader()
        let upgrade = core.withLock { $0.upgrade?.task }
        upgrade?.cancel()
        coordinator.close()
        for client in leaderClients.withLock({ Array($0.values) }) { client.close() }
        await server.shutdown(drainTimeout: configuration.timeouts.drain)
        for task in tasks { await task.value }
        stopSignal.notify()
    }

    public var status: AgentRuntimeStatus {
        let state = core.value
        let counts = counters.value
        return AgentRuntimeStatus(
            agentID: state.agentID, role: state.assignment?.role ?? .unspecified,
            clusterID: state.assignment?.clusterID ?? "", leaderID: state.assignment?.leaderID ?? "",
            leaderAddress: state.assignment?.leaderAddress ?? "", epoch: state.epoch, mainVersion: state.mainVersion,
            progress: state.progress, memberPort: memberPort, bytesFromLeader: counts.bytesFromLeader,
            bytesFromCoordinator: counts.bytesFromCoordinator, bytesServed: counts.bytesServed,
            registrations: counts.registrations, reportsSent: counts.reportsSent, refusals: counts.refusals,
            faultsReported: counts.faultsReported, installs: counts.installs,
            secondInstructionsSent: counts.secondInstructionsSent, ordersRefused: counts.ordersRefused,
            installFloor: floor.version, leader: leaderStatus)
    }

    // MARK: - Shared plumbing

    var isStopped: Bool { core.value.stopped }

    func startBackground(_ body: @escaping @Sendable () async -> Void) {
        background.withLock { background in
            let number = background.next
            background.next += 1
            background.tasks[number] = Task {
                await body()
                self.background.withLock { _ = $0.tasks.removeValue(forKey: number) }
            }
        }
        if isStopped { background.withLock { $0.tasks.values.forEach { $0.cancel() } } }
    }

    /// One line in the runtime's log, with the agent's id (once the coordinator confirmed it)
    /// as the field `agent`.
    func log(_ line: @autoclosure () -> String, level: LogLevel = .info, _ fields: KeyValuePairs<String, String> = [:]) {
        let logger = configuration.logger
        guard logger.isEnabled(level) else { return }
        let id = core.value.agentID
        var all = fields.map { LogField($0.key, $0.value) }
        if !id.isEmpty { all.insert(LogField("agent", id), at: 0) }
        logger.log(level, line(), fields: all)
    }

    func warn(_ line: @autoclosure () -> String, _ fields: KeyValuePairs<String, String> = [:]) {
        log(line(), level: .warning, fields)
    }

    func refuse(_ why: String) {
        counters.withLock { $0.refusals += 1 }
        warn("refused: \(why)")
        configuration.onEvent(.refused(why))
    }

    /// Sets the agent's own progress and wakes the reporters.
    func setProgress(_ progress: AgentProgress) {
        core.withLock {
            $0.progress = progress
            $0.lastBytesReport = .now
        }
        progressChanged.notify()
        configuration.onEvent(.progress(progress))
    }

    /// Download bytes move often: they are reported at most about once a second.
    func setDownloadBytes(_ done: UInt64, rolloutID: UInt64) {
        let report = core.withLock { state -> Bool in
            guard var progress = state.progress, progress.rolloutID == rolloutID else { return false }
            progress.bytesDone = done
            state.progress = progress
            guard ContinuousClock.now - state.lastBytesReport >= .seconds(1) || done == progress.bytesTotal else { return false }
            state.lastBytesReport = .now
            return true
        }
        if report { progressChanged.notify() }
    }

    func heartbeat() -> Heartbeat {
        Heartbeat(idle: idle.current, mainVersion: core.value.mainVersion, upgraderVersion: configuration.currentUpgraderVersion?() ?? configuration.upgraderVersion)
    }

    /// Reports on a session (coordinator) or join (leader) stream: at once, then on every change
    /// of the signals and every report interval, until cancelled or the write fails.
    func pumpReports(to writer: StreamWriter<AgentReport>, signals: [ChangeSignal], build: @escaping @Sendable () -> AgentReport) async throws {
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    wake.yield()
                    await pause(self.core.value.reportInterval)
                }
            }
            for signal in signals {
                group.addTask {
                    var seen = signal.generation
                    while !Task.isCancelled {
                        seen = await signal.wait(after: seen)
                        wake.yield()
                        // Coalesce bursts (many members changing at once) into one report.
                        await pause(.milliseconds(20))
                    }
                }
            }
            group.addTask {
                for await _ in wakeups {
                    try await writer.write(build())
                }
            }
            _ = try await group.next()
            group.cancelAll()
        }
    }

    /// Where this agent's own connections start from: its bind address (any port), so the
    /// coordinator and leaders see the address it registered and is grouped by — on loopback,
    /// the subnet it emulates. None for a wildcard bind or a target of the other family,
    /// where the kernel's choice is the right one.
    static func sourceAddress(_ configuration: AgentRuntimeConfiguration, toward target: SocketAddress) -> SocketAddress? {
        guard configuration.bindAddress != "0.0.0.0", configuration.bindAddress != "::",
              let local = try? SocketAddress(ip: configuration.bindAddress, port: 0), local.isIPv6 == target.isIPv6
        else { return nil }
        return local
    }

    /// The RPC client for a leader's "ip:port" (one per address, reused across calls).
    func leaderClient(for address: String) -> RPCClient? {
        guard !address.isEmpty, let target = try? SocketAddress(parsing: address) else { return nil }
        return leaderClients.withLock { clients in
            if let known = clients[address] { return known }
            let made = RPCClient(
                target: target, tls: clientTLS, from: Self.sourceAddress(configuration, toward: target), expectedRole: .agent,
                backoff: configuration.retryBackoff)
            clients[address] = made
            return made
        }
    }

    /// Closes the clients of leaders other than the current one.
    func forgetLeaderClients(except address: String) {
        let stale = leaderClients.withLock { clients -> [RPCClient] in
            let gone = clients.filter { $0.key != address }
            for key in gone.keys { clients[key] = nil }
            return Array(gone.values)
        }
        for client in stale { client.close() }
    }

    var callOptions: CallOptions { CallOptions(timeout: configuration.timeouts.call) }
}
