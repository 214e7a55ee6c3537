#if canImport(Glibc)
import Glibc
#endif

/// Bounds for unpacking a bundle. The fleet runtime passes the signed manifest's size; the
/// local CLI uses `standard`.
public struct UnpackLimits: Sendable, Equatable {
    public var maxEntryBytes: Int64
    public var maxTotalBytes: Int64
    public var maxEntries: Int

    public init(maxEntryBytes: Int64, maxTotalBytes: Int64, maxEntries: Int = 10_000) {
        self.maxEntryBytes = maxEntryBytes
        self.maxTotalBytes = maxTotalBytes
        self.maxEntries = maxEntries
    }

    public static let standard = UnpackLimits(maxEntryBytes: 1 << 30, maxTotalBytes: 2 << 30)
}

/// Unpacks a release bundle (a ustar archive, optionally gzip-compressed) into a fresh
/// directory, refusing anything that could write outside it: absolute paths, `..`, links that
/// point outside, hard links, devices and FIFOs, paths through a link, duplicates, and entries
/// over the limits. On any refusal the directory is removed, so nothing half-unpacked remains.
public enum BundleUnpacker {
    /// Unpacks `bundle` into `destination`, which must not exist yet.
    public static func unpack(bundle: String, to destination: String, limits: UnpackLimits = .standard) throws(InstallError) {
        let fd = open(bundle, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw InstallError(.io, "cannot open the bundle \(bundle): \(Posix.lastError)") }
        defer { close(fd) }
        guard mkdir(destination, 0o755) == 0 else {
            throw InstallError(.io, "cannot create \(destination): \(Posix.lastError)")
        }
        do throws(InstallError) {
            if try isGzip(fd) {
                try unpackGzip(fd: fd, bundle: bundle, to: destination, limits: limits)
            } else {
                try extract(TarReader(fd: fd, name: bundle), to: destination, limits: limits)
            }
        } catch {
            Posix.removeTree(destination)
            throw error
        }
    }

    private static func isGzip(_ fd: Int32) throws(InstallError) -> Bool {
        var magic: [UInt8] = [0, 0]
        let count = pread(fd, &magic, 2, 0)
        guard count >= 0 else { throw InstallError(.io, "cannot read the bundle: \(Posix.lastError)") }
        return count == 2 && magic == [0x1f, 0x8b]
    }

    /// gzip is decoded by the system's `gzip -dc` in a child process, streaming into the reader.
    private static func unpackGzip(fd: Int32, bundle: String, to destination: String, limits: UnpackLimits) throws(InstallError) {
        let candidates: [String] = ["/usr/bin/gzip", "/bin/gzip"]
        guard let gzip = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw InstallError(.io, "the bundle \(bundle) is gzip-compressed but gzip is not installed; unpack it to a plain .tar")
        }
        var ends: [Int32] = [0, 0]
        guard Posix.makePipe(&ends) == 0 else { throw InstallError(.io, "pipe failed: \(Posix.lastError)") }
        let pid: pid_t
        do throws(InstallError) {
            pid = try Spawn.start(gzip, ["-dc"], standardInput: fd, standardOutput: ends[1])
        } catch {
            close(ends[0]); close(ends[1])
            throw error
        }
        close(ends[1])
        do throws(InstallError) {
            try extract(TarReader(fd: ends[0], name: bundle), to: destination, limits: limits)
        } catch {
            close(ends[0])
            kill(pid, SIGKILL)
            _ = Spawn.wait(pid)
            throw error
        }
        close(ends[0])
        let exit = Spawn.wait(pid)
        guard exit == .code(0) else { throw InstallError(.unsafeBundle, "gzip could not decompress \(bundle): it \(exit)") }
    }

    private static func extract(_ reader: TarReader, to root: String, limits: UnpackLimits) throws(InstallError) {
        var entries = 0
        var total: Int64 = 0
        while let entry = try reader.next() {
            entries += 1
            guard entries <= limits.maxEntries else {
                throw InstallError(.unsafeBundle, "the bundle has more than \(limits.maxEntries) entries")
            }
            // "./", which `tar -C dir .` writes first, names the release directory itself.
            if entry.kind == .directory && entry.path.split(separator: "/").allSatisfy({ $0 == "." }) { continue }
            let components = try safeComponents(entry.path)
            guard entry.size <= limits.maxEntryBytes else {
                throw InstallError(.unsafeBundle, "the bundle entry \(entry.path) is \(entry.size) bytes, over the limit of \(limits.maxEntryBytes)")
            }
            total += entry.size
            guard total <= limits.maxTotalBytes else {
                throw InstallError(.unsafeBundle, "the bundle holds more than \(limits.maxTotalBytes) bytes")
            }
            let parent = try makeParents(root, components.dropLast(), entry: entry.path)
            let target = "\(parent)/\(components.last!)"
            switch entry.kind {
            case .directory:
                if mkdir(target, 0o755) != 0 && !(errno == EEXIST && Posix.fileType(target) == S_IFDIR) {
                    throw InstallError(.unsafeBundle, "cannot create the directory \(entry.path): \(Posix.lastError)")
                }
            case .file:
                try writeFile(reader, entry: entry, at: target)
            case .symlink(let destination):
                try checkLink(destination, from: components.dropLast(), entry: entry.path)
                guard symlink(destination, target) == 0 else {
                    throw InstallError(.unsafeBundle, "cannot create the link \(entry.path): \(Posix.lastError)")
                }
            case .hardLink:
                throw InstallError(.unsafeBundle, "the bundle entry \(entry.path) is a hard link, which bundles may not hold")
            case .special:
                throw InstallError(.unsafeBundle, "the bundle entry \(entry.path) is a device, FIFO or unknown type, which bundles may not hold")
            }
        }
    }

    /// The path's components, refusing absolute paths, `..` and empty names.
    static func safeComponents(_ path: String) throws(InstallError) -> [Substring] {
        guard !path.hasPrefix("/") else {
            throw InstallError(.unsafeBundle, "the bundle entry \(path) has an absolute path")
        }
        let components = path.split(separator: "/").filter { $0 != "." }
        guard !components.contains("..") else {
            throw InstallError(.unsafeBundle, "the bundle entry \(path) climbs out with \"..\"")
        }
        guard !components.isEmpty else { throw InstallError(.unsafeBundle, "the bundle has an entry with an empty path") }
        return components
    }

    /// A link must be relative and, resolved from its own directory, stay inside the release.
    static func checkLink(_ destination: String, from directory: ArraySlice<Substring>, entry: String) throws(InstallError) {
        guard !destination.isEmpty, !destination.hasPrefix("/") else {
            throw InstallError(.unsafeBundle, "the bundle link \(entry) points outside the release (to \(destination))")
        }
        var depth = directory.count
        for component in destination.split(separator: "/") where component != "." {
            depth += component == ".." ? -1 : 1
            guard depth >= 0 else {
                throw InstallError(.unsafeBundle, "the bundle link \(entry) points outside the release (to \(destination))")
            }
        }
    }

    /// Creates missing parent directories; an existing parent must be a real directory, never a
    /// link (so no entry is ever written through one).
    private static func makeParents(_ root: String, _ components: ArraySlice<Substring>, entry: String) throws(InstallError) -> String {
        var path = root
        for component in components {
            path += "/\(component)"
            switch Posix.fileType(path) {
            case nil:
                guard mkdir(path, 0o755) == 0 else {
                    throw InstallError(.io, "cannot create the directory for \(entry): \(Posix.lastError)")
                }
            case S_IFDIR:
                continue
            default:
                throw InstallError(.unsafeBundle, "the bundle entry \(entry) goes through a link or a file")
            }
        }
        return path
    }

    private static func writeFile(_ reader: TarReader, entry: TarEntry, at path: String) throws(InstallError) {
        // Only the owner's execute bit matters; set-id bits and group/other write never survive.
        let mode: mode_t = entry.mode & 0o111 != 0 ? 0o755 : 0o644
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            if errno == EEXIST { throw InstallError(.unsafeBundle, "the bundle holds \(entry.path) twice") }
            throw InstallError(.io, "cannot create \(entry.path): \(Posix.lastError)")
        }
        defer { close(fd) }
        try reader.readContent { (bytes) throws(InstallError) in try Posix.writeAll(fd, bytes, path: path) }
        guard fsync(fd) == 0 else { throw InstallError(.io, "fsync of \(path) failed: \(Posix.lastError)") }
    }
}
