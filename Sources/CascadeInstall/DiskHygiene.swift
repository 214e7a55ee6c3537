#if canImport(Glibc)
import Glibc
#endif

/// A path a prune removed and the bytes it held.
public struct FreedPath: Sendable, Equatable {
    public let path: String
    public let bytes: UInt64

    /// Measures `path`, then removes it (never following links).
    static func remove(_ path: String) -> FreedPath {
        let bytes = Self.size(of: path)
        Posix.removeTree(path)
        return FreedPath(path: path, bytes: bytes)
    }

    /// Bytes of regular files under `path` (links count as nothing; they are not followed).
    static func size(of path: String) -> UInt64 {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return UInt64(max(info.st_size, 0))
        case S_IFDIR: return Posix.list(path).reduce(0) { $0 + size(of: "\(path)/\($1)") }
        default: return 0
        }
    }
}

/// What `collect` freed, and what it left on purpose (one sentence each).
public struct CollectReport: Sendable, Equatable {
    public var freed: [FreedPath] = []
    public var kept: [String] = []

    public var freedBytes: UInt64 { freed.reduce(0) { $0 + $1.bytes } }
}

/// Keeps an agent root's disk use bounded: the current and previous release of each program,
/// and the download of the release in flight. Everything else goes after each settled switch
/// (confirmed or rolled back) and on `cascade-agent gc`.
public struct DiskHygiene: Sendable {
    public let layout: AgentLayout

    public init(layout: AgentLayout) {
        self.layout = layout
    }

    /// After a switch of `program` settled (its record cleared): its releases other than
    /// current/previous, and downloads not in flight. Callers hold the switch lock.
    @discardableResult
    public func afterSwitch(_ program: Program) -> [FreedPath] {
        ReleaseStore(layout: layout).prune(program) + pruneDownloads().freed
    }

    /// `cascade-agent gc`: takes the switch lock (so it never runs inside a switch, an unpack
    /// or a repair) and prunes both programs and the downloads. A program with a switch record
    /// is left alone: its switch, or the repair at its next start, settles and prunes it.
    public func collect() throws(InstallError) -> CollectReport {
        let lock = try FileLock.acquireWaiting(layout.switchLock)
        defer { withExtendedLifetime(lock) {} }
        var report = CollectReport()
        let journal = SwitchJournal(layout: layout)
        let store = ReleaseStore(layout: layout)
        for program in Program.allCases {
            if (try? journal.load(program)) != .some(nil) {
                report.kept.append("kept the releases of \(program): a switch of it is in progress")
                continue
            }
            if program == .main && FileLock.isHeld(layout.handoffLock) {
                report.kept.append("kept the releases of \(program): a release is being handed to the upgrader; run gc again after it")
            }
            report.freed += store.prune(program)
        }
        let downloads = pruneDownloads()
        report.freed += downloads.freed
        report.kept += downloads.kept
        return report
    }

    /// Downloads are pairs `<version>-<sha>.artifact` / `.progress`. One is in flight while a
    /// runtime has it open (it holds a lock on the artifact for as long as it does), while its
    /// version is the one handed to the upgrader for the rollout in progress
    /// (`state/fleet-upgrade`), or while it is the running release's: its rollout may still
    /// run, and a member that becomes the acting leader serves it from this copy. Every other
    /// one is removed.
    func pruneDownloads() -> CollectReport {
        let directory = layout.downloadsDirectory
        let names = Posix.list(directory)
        var report = CollectReport()
        guard !names.isEmpty else { return report }
        let pending = Set([pendingFleetVersion(), ReleaseStore(layout: layout).currentVersion(.main)].compactMap { $0 })
        let stems = Set(names.map { name in name.split(separator: ".", omittingEmptySubsequences: false).dropLast().joined(separator: ".") })
        for stem in stems.sorted() where !stem.isEmpty {
            let artifact = "\(directory)/\(stem).artifact"
            let version = stem.split(separator: "-").dropLast().joined(separator: "-")
            if FileLock.isHeld(artifact) || pending.contains(version) {
                report.kept.append("kept the download \(artifact): it is in flight")
                continue
            }
            for name in names where name.hasPrefix(stem + ".") {
                report.freed.append(FreedPath.remove("\(directory)/\(name)"))
            }
        }
        return report
    }

    /// The version of the rollout install in progress ("<rollout> <version>"), if any.
    private func pendingFleetVersion() -> String? {
        guard let text = try? Posix.readText("\(layout.stateDirectory)/fleet-upgrade") else { return nil }
        let parts = text.split(separator: " ")
        return parts.count == 2 ? String(parts[1]) : nil
    }
}
