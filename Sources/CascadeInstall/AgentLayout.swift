#if canImport(Glibc)
import Glibc
#endif

/// One of the agent's two programs, each living in its own directory under the root.
public enum Program: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case main
    case upgrader

    /// The executable's name inside a release's `bin/`.
    public var binaryName: String {
        switch self {
        case .main: "cascade-agent"
        case .upgrader: "cascade-upgrader"
        }
    }

    /// The program that supervises and upgrades this one.
    public var peer: Program { self == .main ? .upgrader : .main }

    public var description: String { self == .main ? "the main program" : "the upgrader" }
}

/// The agent's files (DESIGN.md §5):
///
///     <root>/main/{releases/<version>, current, previous}
///     <root>/upgrader/{releases/<version>, current, previous}
///     <root>/state/            0700: locks, pid files, the socket, switch records, failures
///     <root>/agent.conf        optional settings (AgentConfig)
public struct AgentLayout: Sendable, Equatable {
    public let root: String

    public init(root: String) {
        var trimmed = root
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.root = trimmed
    }

    public var stateDirectory: String { "\(root)/state" }
    public var configFile: String { "\(root)/agent.conf" }
    public func directory(_ program: Program) -> String { "\(root)/\(program.rawValue)" }
    public func releasesDirectory(_ program: Program) -> String { "\(directory(program))/releases" }
    public func releaseDirectory(_ program: Program, _ version: String) -> String {
        "\(releasesDirectory(program))/\(version)"
    }
    /// The symlink naming the release that runs (relative: `releases/<version>`).
    public func currentLink(_ program: Program) -> String { "\(directory(program))/current" }
    /// The symlink naming the release before the current one, kept for rollback and status.
    public func previousLink(_ program: Program) -> String { "\(directory(program))/previous" }
    /// The binary that starting `program` runs, through `current`.
    public func currentBinary(_ program: Program) -> String { "\(currentLink(program))/bin/\(program.binaryName)" }

    /// Held for life by the running instance of `program` (see FileLock).
    public func lockFile(_ program: Program) -> String { "\(stateDirectory)/\(program.rawValue).lock" }
    /// "pid version" of the running instance, written after it took its lock.
    public func pidFile(_ program: Program) -> String { "\(stateDirectory)/\(program.rawValue).pid" }
    /// Serialises switches and repairs between the two programs and the CLI.
    public var switchLock: String { "\(stateDirectory)/switch.lock" }
    /// The persisted "switch in progress" record for `program` (SwitchRecord).
    public func switchRecord(_ program: Program) -> String { "\(stateDirectory)/switch-\(program.rawValue).json" }
    /// Versions of `program` that failed and are not tried again unless asked.
    public func failureLog(_ program: Program) -> String { "\(stateDirectory)/failed-\(program.rawValue).json" }
    /// The outcome of the last upgrade of `program`.
    public func resultFile(_ program: Program) -> String { "\(stateDirectory)/last-upgrade-\(program.rawValue).json" }
    /// Present while `program` is in a crash loop (restarted too often), with the reason.
    public func crashLoopFile(_ program: Program) -> String { "\(stateDirectory)/crash-loop-\(program.rawValue)" }
    /// The upgrader's Unix socket (mode 0600 in a 0700 directory; peers checked with SO_PEERCRED).
    public var socketPath: String { "\(stateDirectory)/upgrader.sock" }
    /// Present when an operator stopped the pair: neither restarts the other.
    public var stoppedMarker: String { "\(stateDirectory)/stopped" }
    /// Held by whoever stages a main release until the upgrader has recorded the switch to it,
    /// so no prune removes a release between its unpacking and its switch.
    public var handoffLock: String { "\(stateDirectory)/handoff.lock" }
    /// The fleet settings (optional; FleetConfig in CascadeAgent reads it).
    public var fleetConfigFile: String { "\(root)/fleet.conf" }
    /// The fleet runtime's own state (downloads, install floor).
    public var fleetStateDirectory: String { "\(stateDirectory)/fleet" }
    /// Release downloads: `<version>-<sha256 prefix>.artifact` and `.progress` pairs.
    public var downloadsDirectory: String { "\(fleetStateDirectory)/downloads" }
    /// The main program's link to the fleet as it last published it (for `status`).
    public var fleetLinkFile: String { "\(stateDirectory)/fleet-link.json" }

    /// Whether a first release was installed here (both `current` links exist).
    public var isInstalled: Bool {
        Program.allCases.allSatisfy { Posix.fileType(currentLink($0)) == S_IFLNK }
    }

    /// Creates the directories (idempotent) and makes `state` private to the owner.
    public func prepare() throws(InstallError) {
        try Posix.makeDirectories(root)
        for program in Program.allCases { try Posix.makeDirectories(releasesDirectory(program)) }
        try Posix.makeDirectories(stateDirectory, mode: 0o700)
        guard chmod(stateDirectory, 0o700) == 0 else {
            throw InstallError(.io, "cannot make \(stateDirectory) private: \(Posix.lastError)")
        }
    }
}
