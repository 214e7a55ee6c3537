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
    /// The same, with the rollout's health timeout: how long the new release has to come up
    /// healthy before it is rolled back (services.md §3.4).
    func install(artifact path: String, manifest: Manifest, healthTimeout: Duration?) async throws -> InstallOutcome
}

extension ReleaseInstaller {
    /// Installers that keep no health deadline of their own (tests, the simulation).
    public func install(artifact path: String, manifest: Manifest, healthTimeout: Duration?) async throws -> InstallOutcome {
        try await install(artifact: path, manifest: manifest)
    }
}
