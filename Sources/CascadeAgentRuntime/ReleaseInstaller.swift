public import CascadeAPI

/// What became of an installation.
public enum InstallOutcome: Sendable, Hashable {
    /// The new version is running and confirmed healthy.
    case running(version: String)
    /// The new version did not come up healthy; the previous one runs again.
    case rolledBack(reason: String)
}

/// Installs a verified release. The real agent hands the artifact to its upgrader (the process
/// pair); tests and the fleet simulation record it in memory. The runtime calls this only with
/// an artifact whose every byte matched a manifest that verified against a pinned key.
public protocol ReleaseInstaller: Sendable {
    func install(artifact path: String, manifest: Manifest) async throws -> InstallOutcome
}
