import CascadeLog
public import CascadeInstall
import CascadeUpgrader
import Foundation
#if canImport(Glibc)
import Glibc
#endif

private let log = Logger("handoff")

/// How the main program hands a verified release to the upgrader. The fleet runtime calls
/// `stage` with the verified bundle (and the manifest's size as the limit), then `handOff`;
/// `cascade-agent upgrade` does the same from the command line and then `waitForOutcome`.
public struct ReleaseHandoff: Sendable {
    public let layout: AgentLayout

    public init(layout: AgentLayout) {
        self.layout = layout
    }

    /// Unpacks `bundle` safely into `<root>/main/releases/<VERSION>`; returns the version. A
    /// VERSION other than `expectedVersion` (when given) is refused before anything is placed.
    public func stage(bundle: String, limits: UnpackLimits = .standard, expectedVersion: String? = nil) throws(InstallError) -> String {
        guard layout.isInstalled else {
            throw InstallError(.layout, "\(layout.root) has no installed agent; run `cascade-agent install` first")
        }
        let lock = try FileLock.acquireWaiting(layout.switchLock)
        defer { withExtendedLifetime(lock) {} }
        return try ReleaseStore(layout: layout).add(bundle: bundle, limits: limits, expectedVersion: expectedVersion)
    }

    /// Unpacks `bundle` (as `stage`) and hands it to the upgrader (as `handOff`), holding the
    /// handoff lock from before the unpacking until the upgrader has recorded the switch, so
    /// no prune removes the staged release in between. `beforeHandOff` runs with the version
    /// once it is staged. A release the upgrader refuses is removed again. Returns the version.
    public func deliver(
        bundle: String, limits: UnpackLimits = .standard, expectedVersion: String? = nil, retry: Bool = false,
        healthDeadline: Duration? = nil, beforeHandOff: (String) throws(InstallError) -> Void = { _ in }
    ) throws(InstallError) -> String {
        guard Posix.fileType(layout.stateDirectory) == S_IFDIR else {
            throw InstallError(.layout, "\(layout.root) has no installed agent; run `cascade-agent install` first")
        }
        let handoff = try FileLock.acquireWaiting(layout.handoffLock)
        defer { withExtendedLifetime(handoff) {} }
        let version = try stage(bundle: bundle, limits: limits, expectedVersion: expectedVersion)
        do throws(InstallError) {
            try beforeHandOff(version)
            try handOff(version: version, retry: retry, healthDeadline: healthDeadline)
        } catch {
            discard(version)
            throw error
        }
        return version
    }

    /// Asks the upgrader to switch the main program to the staged `version`. Returns once the
    /// upgrader accepted and recorded the switch; the caller (when it is the main program) is
    /// stopped soon after. `retry` tries a version that failed before.
    /// `healthDeadline`: how long the new release has to report healthy (a rollout's health
    /// timeout); nil leaves it to the upgrader's own `health-deadline`.
    public func handOff(version: String, retry: Bool = false, healthDeadline: Duration? = nil) throws(InstallError) {
        var request = "UPGRADE-MAIN \(version)\(retry ? " retry" : "")"
        if let healthDeadline { request += " health=\(max(1, min(86_400, healthDeadline.components.seconds)))" }
        // The upgrader answers after the new binary's self-test, hence the generous timeout.
        let reply = try ControlSocket.request(layout.socketPath, request, timeout: .seconds(60))
        guard reply.hasPrefix("OK") else {
            throw InstallError(.refused, reply.hasPrefix("ERR ") ? String(reply.dropFirst(4)) : "the upgrader answered \"\(reply)\"")
        }
    }

    /// Removes a staged release the upgrader did not take (unless a switch record names it:
    /// then the upgrader did take it, and its switch settles it).
    private func discard(_ version: String) {
        guard let lock = try? FileLock.acquireWaiting(layout.switchLock) else { return }
        defer { withExtendedLifetime(lock) {} }
        guard (try? SwitchJournal(layout: layout).load(.main)).map({ $0?.to != version }) ?? false else { return }
        for freed in ReleaseStore(layout: layout).discard(.main, version) {
            log.info("removed the refused release \(freed.path) (\(freed.bytes) bytes)")
        }
    }

    /// Waits for the upgrade to `version` asked for at `since` (seconds since 1970) to settle:
    /// the main program's result and, when it was upgraded, the upgrader's.
    public func waitForOutcome(version: String, since: Double, timeout: Duration) throws(InstallError) -> [UpgradeResult] {
        let records = AgentRecords(layout: layout)
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        func fresh(_ program: Program) -> UpgradeResult? {
            guard let result = records.lastResult(program), result.version == version, result.time >= since else { return nil }
            return result
        }
        while clock.now < deadline {
            if let main = fresh(.main) {
                guard main.outcome == .upgraded else { return [main] }
                if let upgrader = fresh(.upgrader) { return [main, upgrader] }
            }
            pollPause(.milliseconds(100))
        }
        throw InstallError(.timeout, "the upgrade to \(version) did not settle within \(timeout); see `cascade-agent status`")
    }
}
