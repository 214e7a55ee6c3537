import CascadeLog
public import CascadeInstall
import Foundation
#if canImport(Glibc)
import Glibc
#endif

private let log = Logger("startup")

/// What each program of the pair does before it starts its real work, in this order:
/// take its lock (one instance per root), repair interrupted switches, re-run itself from
/// `current` if it is not the current release, and publish "pid version".
public enum PairStartup {
    /// The held lock; nil when another instance runs. A standby waits for that instance to go
    /// (and `tookOver` says it did).
    public static func lock(
        _ layout: AgentLayout, _ program: Program, standby: Bool
    ) throws(InstallError) -> (lock: FileLock, tookOver: Bool)? {
        guard Posix.fileType(layout.stateDirectory) == S_IFDIR else {
            throw InstallError(.layout, "\(layout.root) is not an agent root (no state directory); run `cascade-agent install` first")
        }
        if let lock = try FileLock.tryAcquire(layout.lockFile(program)) { return (lock, false) }
        guard standby else { return nil }
        log.info("\(program) already runs; standing by")
        while true {
            if let lock = try takeOverUnlessSwitching(layout, program) { return (lock, true) }
            while Posix.fileType(layout.switchRecord(program)) != nil && FileLock.isHeld(layout.lockFile(program.peer)) {
                pollPause(.milliseconds(100))
            }
        }
    }

    /// Waits for the lock; gives it back (nil) when it was free only because the peer stopped
    /// this program to switch it: the release the peer starts next must get it, not a standby
    /// still running the old one.
    private static func takeOverUnlessSwitching(_ layout: AgentLayout, _ program: Program) throws(InstallError) -> FileLock? {
        let lock = try FileLock.acquireWaiting(layout.lockFile(program))
        if Posix.fileType(layout.switchRecord(program)) != nil && FileLock.isHeld(layout.lockFile(program.peer)) { return nil }
        return lock
    }

    /// Settles interrupted switches: always those of the peer (this program switches the peer,
    /// and a starting instance means the one that was switching is gone), and this program's
    /// own only when the peer, its owner, is not running.
    public static func repair(_ layout: AgentLayout, _ program: Program) throws(InstallError) {
        let lock = try FileLock.acquireWaiting(layout.switchLock)
        defer { withExtendedLifetime(lock) {} }
        let journal = SwitchJournal(layout: layout)
        var owned = [program.peer]
        if !FileLock.isHeld(layout.lockFile(program.peer)) { owned.append(program) }
        for target in owned {
            guard let outcome = try journal.repair(target) else { continue }
            log.info("repaired: \(outcome)")
            // An interrupted switch that went back is an outcome like any rollback: recorded, so
            // whoever waits for that upgrade (the fleet runtime) hears how it ended.
            if case .rolledBack(let program, _, let to) = outcome {
                try? AgentRecords(layout: layout).recordResult(
                    UpgradeResult(program: program, version: to, outcome: .rolledBack, reason: "\(outcome)"))
            }
        }
    }

    /// Replaces this process with `current`'s binary when it runs another release (or none),
    /// so that what runs is always what `current` names.
    public static func reexecIfStale(_ layout: AgentLayout, _ program: Program) throws(InstallError) {
        let current = ReleaseStore(layout: layout).currentVersion(program)
        guard let current, current != ReleaseCheck.runningVersion() else { return }
        let binary = layout.currentBinary(program)
        log.info("running \(ReleaseCheck.runningVersion() ?? "outside a release") but current is \(current); re-executing \(binary)")
        let argv = ([binary] + CommandLine.arguments.dropFirst()).map { strdup($0) } + [nil]
        execv(binary, argv)
        throw InstallError(.io, "cannot execute \(binary): \(Posix.lastError)")
    }

    public static func writePidFile(_ layout: AgentLayout, _ program: Program, version: String) throws(InstallError) {
        try Posix.writeAtomically(layout.pidFile(program), Array("\(getpid()) \(version)\n".utf8))
    }

    /// `--self-test`: this binary's release is complete. Prints "ok <version>".
    public static func selfTest() -> Int32 {
        guard let release = ReleaseCheck.runningReleaseDirectory() else {
            StandardError.write("self-test failed: this binary does not run from a release (<release>/bin/)\n")
            return 1
        }
        do throws(InstallError) {
            print("ok \(try ReleaseCheck.validate(release))")
            return 0
        } catch {
            StandardError.write("self-test failed: \(error.message)\n")
            return 1
        }
    }
}
