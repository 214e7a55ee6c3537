import CascadeLog
import CascadeAPI
import CascadeAgentRuntime
import CascadeInstall
import CascadeNet
import CascadeUpgrader
import Foundation
import Synchronization

private let log = Logger("fleet")

/// Joins the main program to the fleet: runs the agent runtime (DESIGN.md §1) as a service of
/// the main program, reports healthy to the upgrader only once registered with the
/// coordinator (when there is a fleet.conf), and hands verified releases to the upgrader.
/// Never silently: a configuration that does not work (fleet.conf, its TLS files, the member
/// port, the coordinator) is logged, published for `cascade-agent status` and tried again with
/// backoff, reading fleet.conf afresh each time, so fixing it is all it takes.
public enum FleetAgent {
    /// The hooks `cascade-agent run` uses.
    public static func hooks(root: String) -> AgentHooks {
        let link = FleetLinkPublisher(layout: AgentLayout(root: root))
        let views = AgentMetricsServer(link: link)
        return AgentHooks(isReady: { link.isReady }, services: [{ context in run(context, link: link, views: views) }])
    }

    /// Runs until the process ends (the upgrader stops it to switch releases).
    private static func run(_ context: AgentContext, link: FleetLinkPublisher, views: AgentMetricsServer) {
        let layout = context.layout
        let timings = (try? AgentConfig.load(layout)) ?? AgentConfig()
        let pending = PendingUpgrade(layout: layout)
        let journal = SwitchJournal(layout: layout)
        // This release counts as healthy only once the upgrader confirmed the switch to it
        // (registering is part of what it waits for); until then the install is still running.
        let confirmed: @Sendable () -> Bool = {
            do {
                return try journal.load(.main).map { $0.phase == .confirmed } ?? true
            } catch {
                return false
            }
        }
        // Read once, at the first attempt: reading it forgets a settled install.
        var resume: AgentProgress??
        var failures = 0
        while true {
            let config: FleetConfig?
            do throws(InstallError) {
                config = try FleetConfig.load(layout)
            } catch {
                failures += 1
                retry(error.message, failures: failures, timings: timings, link: link)
                continue
            }
            views.serve(at: config?.metricsListen)
            guard let config else {
                link.publish(FleetLink(state: .notConfigured))
                failures = 0
                pollPause(timings.fleetRetryMax)  // a fleet.conf written later is picked up
                continue
            }
            let progress: AgentProgress?
            if let known = resume {
                progress = known
            } else {
                progress = pending.outcome(runningVersion: context.version, confirmed: confirmed())
                resume = .some(progress)
            }
            let failure = join(config, context, link: link, views: views, resume: progress, confirmed: confirmed)
            failures += 1
            retry(failure, failures: failures, timings: timings, link: link)
        }
    }

    /// Publishes and logs why the agent is not in the fleet, then waits out the backoff.
    private static func retry(_ reason: String, failures: Int, timings: AgentConfig, link: FleetLinkPublisher) {
        var delay = timings.fleetRetry
        for _ in 1..<max(failures, 1) where delay < timings.fleetRetryMax { delay *= 2 }
        delay = min(delay, timings.fleetRetryMax)
        link.publish(FleetLink(state: .retrying, reason: reason))
        log.warning("not in the fleet: \(reason); trying again in \(delay)")
        pollPause(delay)
    }

    /// One attempt: builds the runtime and runs it. Returns why it could not start or ended.
    private static func join(
        _ config: FleetConfig, _ context: AgentContext, link: FleetLinkPublisher, views: AgentMetricsServer, resume: AgentProgress?,
        confirmed: @escaping @Sendable () -> Bool
    ) -> String {
        let layout = context.layout
        let pending = PendingUpgrade(layout: layout)
        let installer = PairInstaller(context: context, pending: pending)
        let path = FleetConfig.path(layout)
        let coordinator = "\(config.coordinator)"
        var configuration = AgentRuntimeConfiguration(
            coordinatorAddress: config.coordinator, bindAddress: config.bind, memberPort: config.memberPort,
            tls: config.tls, releaseKeys: config.releaseKeys, stateDirectory: layout.fleetStateDirectory,
            mainVersion: context.version, upgraderVersion: ReleaseStore(layout: layout).currentVersion(.upgrader) ?? context.version,
            hostname: AgentText.isValidHostname(ProcessInfo.processInfo.hostName) ? ProcessInfo.processInfo.hostName : "", resume: resume, defaultReportInterval: config.reportInterval,
            idleOverride: config.idleOverride,
            faults: AgentRuntimeConfiguration.FaultSwitches(corruptServedChunks: config.corruptServedChunks),
            onEvent: { event in
                switch event {
                case .assigned(let role, _, _):
                    link.publish(FleetLink(state: .joined, coordinator: coordinator, role: "\(role)"))
                case .coordinatorLinkFailed(let why) where why.hasPrefix("TLS "):
                    // A refused handshake: the sentence already names the certificate and the fix.
                    link.publish(FleetLink(state: .retrying, coordinator: coordinator, reason: "cannot register: \(why)"))
                case .coordinatorLinkFailed(let why):
                    link.publish(FleetLink(
                        state: .retrying, coordinator: coordinator,
                        reason: "cannot register with the coordinator at \(coordinator) (\(why)); check that it runs, "
                            + "that \"coordinator\" in \(path) names it and that it trusts this agent's certificate"))
                case .progress(let progress):
                    installer.latest.withLock { $0 = progress }
                default:
                    break
                }
            },
            logger: Logger("fleet"))
        configuration.currentUpgraderVersion = { ReleaseStore(layout: layout).currentVersion(.upgrader) ?? "" }
        configuration.metrics = views.metrics
        let runtime: AgentRuntime
        do {
            runtime = try AgentRuntime(configuration: configuration, installer: installer)
        } catch {
            return explain(error, config, path: path)
        }
        log.info("joining the fleet through \(config.coordinator) as \(config.bind) (member port \(runtime.memberPort))")
        if resume?.state == .installing {
            // Report healthy once the upgrader confirms; if it rolls back instead, it stops
            // this process and the previous release reports the rollback.
            Thread.detachNewThread {
                while !confirmed() { pollPause(.milliseconds(100)) }
                if let done = pending.outcome(runningVersion: context.version, confirmed: true) {
                    runtime.reportProgress(done)
                }
            }
        }
        views.attach(runtime)
        defer { views.attach(nil) }
        let ended = Mutex<String>("the fleet runtime stopped")
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await runtime.run()
            } catch {
                ended.withLock { $0 = "the fleet runtime stopped: \(error)" }
            }
            await runtime.shutdown()
            done.signal()
        }
        done.wait()
        return ended.withLock { $0 }
    }

    /// One sentence for an attempt that could not start: what failed and what to fix.
    static func explain(_ error: any Error, _ config: FleetConfig, path: String) -> String {
        switch error {
        case let net as NetError where net.code == .addressInUse:
            "member port \(config.memberPort) on \(config.bind) is in use by another process; free it or set another \"member-port\" in \(path)"
        case let net as NetError where net.code == .invalidAddress:
            "cannot listen on \(config.bind):\(config.memberPort) (\(net.message)); \"bind\" in \(path) must be an address of this server"
        case let net as NetError:
            "cannot listen on \(config.bind):\(config.memberPort) (\(net.message)); check \"bind\" and \"member-port\" in \(path)"
        case let tls as TLSError:
            "the TLS files named in \(path) do not load (\(tls.message)); check \"ca\", \"cert\" and \"key\""
        case let runtime as RuntimeError:
            "the fleet runtime could not start: \(runtime.message)"
        default:
            "the fleet runtime could not start: \(error)"
        }
    }
}

/// The rollout an install belongs to, kept across the restart the install causes, so the next
/// main program (the new one, or the old one after a rollback) reports how it ended.
struct PendingUpgrade: Sendable {
    let layout: AgentLayout
    var path: String { "\(layout.stateDirectory)/fleet-upgrade" }

    func record(rolloutID: UInt64, version: String) throws {
        let temporary = path + ".tmp"
        try Data("\(rolloutID) \(version)\n".utf8).write(to: URL(fileURLWithPath: temporary), options: .atomic)
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    /// What to tell the coordinator at registration. The record is forgotten once the outcome
    /// is final: a rollback, or this release running with its switch `confirmed` by the
    /// upgrader. Before that confirmation the install is still in progress (`installing`), and
    /// the record stays, so a rollback is reported by the release that runs again.
    func outcome(runningVersion: String, confirmed: Bool) -> AgentProgress? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let parts = text.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard parts.count == 2, let rollout = UInt64(parts[0]) else {
            unlink(path)
            return nil
        }
        let version = parts[1]
        if version == runningVersion {
            guard confirmed else { return AgentProgress(rolloutID: rollout, state: .installing, releaseVersion: version) }
            unlink(path)
            return AgentProgress(rolloutID: rollout, state: .healthy, releaseVersion: version)
        }
        unlink(path)
        let result = AgentRecords(layout: layout).lastResult(.main)
        let reason = result.map { $0.version == version ? $0.reason : "" } ?? ""
        return AgentProgress(
            rolloutID: rollout, state: .rolledBack, releaseVersion: version,
            error: reason.isEmpty ? "\(version) did not come up healthy; \(runningVersion) runs again" : reason)
    }
}

/// Hands a verified artifact (a release bundle) to the upgrader. On success the upgrader stops
/// this process to switch, so `install` does not return; the next main program reports.
final class PairInstaller: ReleaseInstaller {
    let context: AgentContext
    let pending: PendingUpgrade
    /// The runtime's latest progress (it carries the rollout id).
    let latest = Mutex<AgentProgress?>(nil)

    init(context: AgentContext, pending: PendingUpgrade) {
        self.context = context
        self.pending = pending
    }

    func install(artifact path: String, manifest: Manifest) async throws -> InstallOutcome {
        try await install(artifact: path, manifest: manifest, healthTimeout: nil)
    }

    func install(artifact path: String, manifest: Manifest, healthTimeout: Duration?) async throws -> InstallOutcome {
        let limits = UnpackLimits.signedBundle(size: manifest.size)
        let handoff = context.handoff
        let rollout = latest.withLock { $0?.rolloutID ?? 0 }
        let pending = self.pending
        let since = Date().timeIntervalSince1970
        // Unpacking and the upgrader's reply (after the new binary's self-test) block: keep
        // them off the cooperative threads.
        let version = try await Self.blocking { () throws -> String in
            // The VERSION is compared before releases/<VERSION> is touched; the handoff lock
            // is held until the upgrader recorded the switch (no prune can remove it first).
            var recorded = false
            do {
                return try handoff.deliver(
                    bundle: path, limits: limits, expectedVersion: manifest.version, healthDeadline: healthTimeout
                ) { (version: String) throws(InstallError) in
                    do {
                        try pending.record(rolloutID: rollout, version: version)
                        recorded = true
                    } catch {
                        throw InstallError(.io, "cannot record the rollout of \(version) in \(pending.path): \(error)")
                    }
                }
            } catch {
                if recorded { unlink(pending.path) }
                throw error
            }
        }
        log.info("handed \(version) to the upgrader; it will restart this program")
        // The upgrader stops this process now. If it does not — it died, and its repair rolled
        // the switch back — its recorded result says so, and that is this install's outcome.
        let records = AgentRecords(layout: context.layout)
        while true {
            if let result = records.lastResult(.main), result.version == version, result.time >= since, result.outcome != .upgraded {
                unlink(pending.path)
                return .rolledBack(reason: result.reason)
            }
            try await Task.sleep(for: .milliseconds(500))  // polling the result file, until this process is stopped
        }
    }

    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }
}
