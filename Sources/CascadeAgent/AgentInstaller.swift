public import CascadeInstall
import CascadeUpgrader
#if canImport(Glibc)
import Glibc
#endif

/// First installation and stopping of the pair.
public enum AgentInstaller {
    /// Lays out `root` and installs `bundle` as the first release of both programs.
    public static func install(root: String, bundle: String, limits: UnpackLimits = .standard) throws(InstallError) -> String {
        let layout = AgentLayout(root: root)
        guard !layout.isInstalled else {
            throw InstallError(.refused, "\(layout.root) already has an agent installed; use `cascade-agent upgrade`")
        }
        try layout.prepare()
        let lock = try FileLock.acquireWaiting(layout.switchLock)
        defer { withExtendedLifetime(lock) {} }
        // A half-finished earlier install runs nothing, so its links can go.
        for program in Program.allCases { unlink(layout.currentLink(program)) }
        let store = ReleaseStore(layout: layout)
        let version = try store.add(bundle: bundle, limits: limits)
        try store.copyToUpgrader(version)
        try store.point(.upgrader, at: version)
        try store.point(.main, at: version)
        return version
    }

    /// Stops both programs so that neither restarts the other (until one is started again).
    public static func stop(root: String, grace: Duration) throws(InstallError) {
        let layout = AgentLayout(root: root)
        guard Posix.fileType(layout.stateDirectory) == S_IFDIR else {
            throw InstallError(.layout, "\(layout.root) is not an agent root")
        }
        try Posix.writeAtomically(layout.stoppedMarker, [])
        for program in [Program.main, .upgrader] {
            PeerSupervisor(layout: layout, program: program, arguments: [], config: AgentConfig()).stop(grace: grace)
        }
    }
}
