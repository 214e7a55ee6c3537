import CascadeAPI
import CascadeAgentRuntime
import CascadeInstall
import CascadeUpgrader
import Foundation
import Synchronization

/// Joins the main program to the fleet: runs the agent runtime (DESIGN.md §1) as a service of
/// the main program, reports healthy to the upgrader only once registered with the
/// coordinator, and hands verified releases to the upgrader.
public enum FleetAgent {
    /// The hooks `cascade-agent run` uses: fleet ones when `<root>/fleet.conf` exists.
    public static func hooks(root: String) -> AgentHooks {
        let layout = AgentLayout(root: root)
        let config: FleetConfig?
        do {
            config = try FleetConfig.load(layout)
        } catch {
            Log.info("not joining the fleet: \(error.message)")
            return AgentHooks()
        }
        guard let config else { return AgentHooks() }
        let ready = ReadyFlag()
        return AgentHooks(isReady: { ready.value }, services: [{ context in run(config, context, ready: ready) }])
    }

    /// Runs the runtime until the process ends (the upgrader stops it to switch releases).
    private static func run(_ config: FleetConfig, _ context: AgentContext, ready: ReadyFlag) {
        let pending = PendingUpgrade(layout: context.layout)
        let journal = SwitchJournal(layout: context.layout)
        // This release counts as healthy only once the upgrader confirmed the switch to it
        // (registering is part of what it waits for); until then the install is still running.
        let confirmed: @Sendable () -> Bool = {
            do {
                return try journal.load(.main).map { $0.phase == .confirmed } ?? true
            } catch {
                return false
            }
        }
        let resume = pending.outcome(runningVersion: context.version, confirmed: confirmed())
        let installer = PairInstaller(context: context, pending: pending)
        var configuration = AgentRuntimeConfiguration(
            coordinatorAddress: config.coordinator, bindAddress: config.bind, memberPort: config.memberPort,
            tls: config.tls, releaseKeys: config.releaseKeys, stateDirectory: "\(context.layout.stateDirectory)/fleet",
            mainVersion: context.version, upgraderVersion: ReleaseStore(layout: context.layout).currentVersion(.upgrader) ?? context.version,
            hostname: ProcessInfo.processInfo.hostName, resume: resume, defaultReportInterval: config.reportInterval,
            idleOverride: config.idleOverride,
            faults: AgentRuntimeConfiguration.FaultSwitches(corruptServedChunks: config.corruptServedChunks),
            onEvent: { event in
                if case .assigned = event { ready.set() }
                if case .progress(let progress) = event { installer.latest.withLock { $0 = progress } }
            },
            log: { Log.info($0) })
        let layout = context.layout
        configuration.currentUpgraderVersion = { ReleaseStore(layout: layout).currentVersion(.upgrader) ?? "" }
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let runtime = try AgentRuntime(configuration: configuration, installer: installer)
                Log.info("joining the fleet through \(config.coordinator) as \(config.bind) (member port \(runtime.memberPort))")
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
                try await runtime.run()
            } catch {
                Log.info("the fleet runtime stopped: \(error)")
            }
            done.signal()
        }
        done.wait()
    }
}

/// Set once the runtime has its first assignment: the "session re-established" part of health.
final class ReadyFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var value: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
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
        let limits = UnpackLimits.signedBundle(size: manifest.size)
        let handoff = context.handoff
        let rollout = latest.withLock { $0?.rolloutID ?? 0 }
        let pending = self.pending
        // Unpacking and the upgrader's reply (after the new binary's self-test) block: keep
        // them off the cooperative threads.
        let version = try await Self.blocking { () throws -> String in
            // The VERSION is compared inside stage, before releases/<VERSION> is touched.
            let version = try handoff.stage(bundle: path, limits: limits, expectedVersion: manifest.version)
            try pending.record(rolloutID: rollout, version: version)
            do {
                try handoff.handOff(version: version)
            } catch {
                unlink(pending.path)
                throw error
            }
            return version
        }
        Log.info("handed \(version) to the upgrader; it will restart this program")
        // The upgrader stops this process now; if it somehow does not, the deadline of the
        // installing state fails the agent at the coordinator.
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }
}
