import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The releases of each program and the `current`/`previous` links that name two of them.
public struct ReleaseStore: Sendable {
    public let layout: AgentLayout

    public init(layout: AgentLayout) {
        self.layout = layout
    }

    /// Unpacks `bundle` as a release of the main program (releases/<VERSION>) and returns its
    /// version. A version that is current is refused; any other copy of it is replaced. With
    /// `expectedVersion` (the signed manifest's), a VERSION that differs is refused before
    /// anything is placed, so a bundle cannot replace another release than the one it was
    /// signed as.
    public func add(bundle: String, limits: UnpackLimits = .standard, expectedVersion: String? = nil) throws(InstallError) -> String {
        let releases = layout.releasesDirectory(.main)
        let staging = try makeStaging(in: releases)
        let version: String
        do throws(InstallError) {
            Posix.removeTree(staging)
            try BundleUnpacker.unpack(bundle: bundle, to: staging, limits: limits)
            version = try ReleaseCheck.validate(staging)
            if let expectedVersion, version != expectedVersion {
                throw InstallError(.invalidRelease, "the bundle's VERSION is \(version), but its manifest says \(expectedVersion)")
            }
        } catch {
            Posix.removeTree(staging)
            throw error
        }
        try place(staging, program: .main, version: version)
        return version
    }

    /// Copies the main program's release `version` into the upgrader's releases, side by side
    /// with the running one (the two programs never share a directory).
    public func copyToUpgrader(_ version: String) throws(InstallError) {
        let source = layout.releaseDirectory(.main, version)
        _ = try ReleaseCheck.validate(source)
        let staging = try makeStaging(in: layout.releasesDirectory(.upgrader))
        do throws(InstallError) {
            Posix.removeTree(staging)
            try copyTree(source, staging)
        } catch {
            Posix.removeTree(staging)
            throw error
        }
        try place(staging, program: .upgrader, version: version)
    }

    /// The version `current` names, nil before the first install.
    public func currentVersion(_ program: Program) -> String? { linkedVersion(layout.currentLink(program)) }

    /// The version `previous` names, if any.
    public func previousVersion(_ program: Program) -> String? { linkedVersion(layout.previousLink(program)) }

    /// Points `current` (or `previous`) at releases/<version> atomically: a new symlink under a
    /// temporary name, renamed over the old one, then the directory fsynced. A crash leaves the
    /// old link or the new one, never none.
    public func point(_ program: Program, current: Bool = true, at version: String) throws(InstallError) {
        let link = current ? layout.currentLink(program) : layout.previousLink(program)
        let temporary = "\(link).new"
        unlink(temporary)
        guard symlink("releases/\(version)", temporary) == 0 else {
            throw InstallError(.io, "cannot create the link \(temporary): \(Posix.lastError)")
        }
        FaultPoint.hit("\(program.rawValue)-link-created", layout: layout)
        guard rename(temporary, link) == 0 else {
            let reason = Posix.lastError
            unlink(temporary)
            throw InstallError(.io, "cannot switch \(link) to \(version): \(reason)")
        }
        try Posix.fsyncDirectory(layout.directory(program))
    }

    /// Removes releases other than `current`, `previous` and `keep`, plus leftovers of
    /// interrupted unpacks and links (so at most the last two releases stay); returns what it
    /// freed. Callers hold the switch lock. While a main release is being handed to the
    /// upgrader (the handoff lock is held) only the link leftovers go: the staged release is
    /// not named by any link yet.
    @discardableResult
    public func prune(_ program: Program, keeping keep: [String] = []) -> [FreedPath] {
        unlink("\(layout.currentLink(program)).new")
        unlink("\(layout.previousLink(program)).new")
        let handoff = program == .main ? ((try? FileLock.tryAcquire(layout.handoffLock)) ?? nil) : nil
        guard program == .upgrader || handoff != nil else { return [] }
        let kept = Set([currentVersion(program), previousVersion(program)].compactMap { $0 } + keep)
        let releases = layout.releasesDirectory(program)
        var freed: [FreedPath] = []
        for name in Posix.list(releases) where !kept.contains(name) {
            freed.append(FreedPath.remove("\(releases)/\(name)"))
        }
        withExtendedLifetime(handoff) {}
        return freed
    }

    /// Removes releases/<version> of `program` unless a link names it: the leftover of a
    /// release the upgrader refused. Callers hold the switch lock.
    @discardableResult
    public func discard(_ program: Program, _ version: String) -> [FreedPath] {
        guard ReleaseCheck.isValidVersion(version), currentVersion(program) != version, previousVersion(program) != version else { return [] }
        let directory = layout.releaseDirectory(program, version)
        guard Posix.fileType(directory) != nil else { return [] }
        return [FreedPath.remove(directory)]
    }

    private func linkedVersion(_ link: String) -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link) else { return nil }
        let version = (target as NSString).lastPathComponent
        return ReleaseCheck.isValidVersion(version) ? version : nil
    }

    private func makeStaging(in directory: String) throws(InstallError) -> String {
        try Posix.makeDirectories(directory)
        var template = Array("\(directory)/.incoming-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw InstallError(.io, "cannot create a staging directory in \(directory): \(Posix.lastError)")
        }
        return String(cString: made)
    }

    /// Renames a checked staging directory to releases/<version>, replacing an older copy that
    /// is not running.
    private func place(_ staging: String, program: Program, version: String) throws(InstallError) {
        let target = layout.releaseDirectory(program, version)
        if currentVersion(program) == version {
            Posix.removeTree(staging)
            throw InstallError(.refused, "\(version) is already the current release of \(program)")
        }
        if Posix.fileType(target) != nil { Posix.removeTree(target) }
        guard rename(staging, target) == 0 else {
            let reason = Posix.lastError
            Posix.removeTree(staging)
            throw InstallError(.io, "cannot move the unpacked release to \(target): \(reason)")
        }
        try Posix.fsyncDirectory(layout.releasesDirectory(program))
    }

    /// Copies files (fsynced, modes kept), directories and relative links; nothing else exists
    /// in a checked release.
    private func copyTree(_ source: String, _ destination: String) throws(InstallError) {
        guard mkdir(destination, 0o755) == 0 else { throw InstallError(.io, "cannot create \(destination): \(Posix.lastError)") }
        for name in Posix.list(source) {
            let from = "\(source)/\(name)"
            let to = "\(destination)/\(name)"
            switch Posix.fileType(from) {
            case S_IFDIR:
                try copyTree(from, to)
            case S_IFLNK:
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: from),
                      symlink(target, to) == 0
                else { throw InstallError(.io, "cannot copy the link \(from)") }
            case S_IFREG:
                try copyFile(from, to)
            default:
                throw InstallError(.invalidRelease, "\(from) is not a file, directory or link")
            }
        }
    }

    private func copyFile(_ from: String, _ to: String) throws(InstallError) {
        var info = stat()
        let input = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard input >= 0, fstat(input, &info) == 0 else { throw InstallError(.io, "cannot read \(from): \(Posix.lastError)") }
        defer { close(input) }
        let output = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, info.st_mode & 0o755)
        guard output >= 0 else { throw InstallError(.io, "cannot create \(to): \(Posix.lastError)") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw InstallError(.io, "reading \(from) failed: \(Posix.lastError)") }
            if count == 0 { break }
            var failure: InstallError?
            buffer.withUnsafeBytes { raw in
                do throws(InstallError) { try Posix.writeAll(output, UnsafeRawBufferPointer(rebasing: raw[0..<count]), path: to) } catch { failure = error }
            }
            if let failure { throw failure }
        }
        guard fsync(output) == 0 else { throw InstallError(.io, "fsync of \(to) failed: \(Posix.lastError)") }
    }
}
