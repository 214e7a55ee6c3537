#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CascadeAPI

/// The lowest version this agent may install without a downgrade authorisation: the highest
/// version it has installed (or run), kept in `<stateDirectory>/install-floor` and written
/// durably (temporary file, fsync, rename, directory fsync) before an install is reported
/// healthy, so a restart — or a leader replaying an old order — can never take it lower.
/// Only an authorised downgrade lowers it, to the version that authorisation installed.
final class InstallFloor: Sendable {
    let path: String
    private let directory: String
    private let current: Locked<String>

    /// Reads the stored floor; the running version raises it (an agent installed by hand at a
    /// newer version never goes back below what it runs).
    init(stateDirectory: String, runningVersion: String) throws(RuntimeError) {
        directory = stateDirectory
        path = stateDirectory + "/install-floor"
        try makeDirectories(stateDirectory)
        let stored = readSmallFile(path, limit: 256).map { $0.trimmingCharacters(in: " \n") } ?? ""
        current = Locked(stored)
        if stored.isEmpty || Self.isHigher(runningVersion, than: stored) {
            try set(runningVersion)
        }
    }

    var version: String { current.value }

    /// Raises the floor to `version` (never lowers it).
    func raise(to version: String) throws(RuntimeError) {
        guard Self.isHigher(version, than: current.value) else { return }
        try set(version)
    }

    /// Sets the floor to `version`, also lower (an authorised downgrade installed it).
    func set(_ version: String) throws(RuntimeError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RuntimeError(.io, "cannot write \(temporary): \(errnoText())") }
        do {
            try writeFully(fd, Array((version + "\n").utf8), at: 0, path: temporary)
            try syncData(fd, path: temporary)
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw RuntimeError(.io, "cannot rename \(temporary) to \(path): \(errnoText())") }
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
        current.withLock { $0 = version }
    }

    /// True when `candidate` parses and is above `floor`, or `floor` does not parse (a floor
    /// nobody can compare with is replaced by any real version).
    static func isHigher(_ candidate: String, than floor: String) -> Bool {
        guard let new = try? ReleaseVersion(candidate) else { return false }
        guard let old = try? ReleaseVersion(floor) else { return true }
        return new > old
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        let skip = Set(set)
        var text = Substring(self)
        while let first = text.first, skip.contains(first) { text = text.dropFirst() }
        while let last = text.last, skip.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
