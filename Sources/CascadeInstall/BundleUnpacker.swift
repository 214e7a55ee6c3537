#if canImport(Glibc)
import Glibc
#endif

/// Unpacks a release bundle (a ustar archive, optionally gzip-compressed) into a fresh
/// directory, refusing anything that could write outside it: absolute paths, `..`, links that
/// resolve outside (through the archive's other links too), hard links, devices and FIFOs,
/// set-id and sticky bits, paths through a link, duplicates, and entries over the limits. On
/// any refusal the directory is removed, so nothing half-unpacked remains.
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
                try unpackGzip(fd: fd, bundle: bundle, to: destination, limits: limits.forGzip)
            } else {
                try extract(TarReader(fd: fd, name: bundle), to: destination, limits: limits, syncFiles: true)
            }
        } catch {
            Posix.removeTree(destination)
            throw error
        }
    }

    /// Unpacks the plain tar read from `fd` into `destination` (which must not exist), as
    /// `unpack` does. `syncFiles: false` skips each file's fsync, for tests that unpack
    /// thousands of archives; installs always sync.
    static func unpackTar(fd: Int32, name: String, to destination: String, limits: UnpackLimits, syncFiles: Bool) throws(InstallError) {
        guard mkdir(destination, 0o755) == 0 else {
            throw InstallError(.io, "cannot create \(destination): \(Posix.lastError)")
        }
        do throws(InstallError) {
            try extract(TarReader(fd: fd, name: name), to: destination, limits: limits, syncFiles: syncFiles)
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
            try extract(TarReader(fd: ends[0], name: bundle), to: destination, limits: limits, syncFiles: true)
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

    private static func extract(_ reader: TarReader, to root: String, limits: UnpackLimits, syncFiles: Bool) throws(InstallError) {
        var entries = 0
        var total: Int64 = 0
        var tree = BundleTree()
        while let entry = try reader.next() {
            entries += 1
            guard entries <= limits.maxEntries else {
                throw InstallError(.unsafeBundle, "the bundle has more than \(limits.maxEntries) entries")
            }
            try checkKind(entry)
            // "./", which `tar -C dir .` writes first, names the release directory itself.
            if entry.kind == .directory && entry.path.split(separator: "/").allSatisfy({ $0 == "." }) { continue }
            let components = try safeComponents(entry.path)
            guard let name = components.last else { throw InstallError(.unsafeBundle, "the bundle has an entry with an empty path") }
            // Checked from the header, before any of the entry is written.
            guard entry.size <= limits.maxEntryBytes else {
                throw InstallError(.unsafeBundle, "the bundle entry \(entry.path) is \(entry.size) bytes, over the limit of \(limits.maxEntryBytes) per entry")
            }
            let (sum, overflow) = total.addingReportingOverflow(entry.size)
            guard !overflow, sum <= limits.maxTotalBytes else {
                throw InstallError(.unsafeBundle, "the bundle holds more than \(limits.maxTotalBytes) bytes in all, over the limit")
            }
            total = sum
            let parent = try makeParents(root, components.dropLast(), entry: entry.path)
            let target = "\(parent)/\(name)"
            switch entry.kind {
            case .directory:
                if mkdir(target, 0o755) != 0 && !(errno == EEXIST && Posix.fileType(target) == S_IFDIR) {
                    throw InstallError(.unsafeBundle, "cannot create the directory \(entry.path): \(Posix.lastError)")
                }
                tree.add(components, .directory)
            case .file:
                try writeFile(reader, entry: entry, at: target, sync: syncFiles)
                tree.add(components, .file)
            case .symlink(let destination):
                try checkLink(destination, from: components.dropLast(), entry: entry.path, tree: tree)
                guard symlink(destination, target) == 0 else {
                    throw InstallError(.unsafeBundle, "cannot create the link \(entry.path): \(Posix.lastError)")
                }
                tree.add(components, .symlink(destination))
            case .hardLink, .special:
                // checkKind refused these above.
                throw InstallError(.unsafeBundle, "the bundle entry \(entry.path) is not a file, directory or symbolic link")
            }
        }
        // A link may lead through a name that a later entry made a link, so every link is
        // resolved again against the finished tree before the release counts as unpacked.
        if let (path, destination, resolution) = tree.firstEscapingLink() {
            throw linkError(path, destination, resolution)
        }
    }

    /// Only files, directories and symbolic links, without set-id or sticky bits, are unpacked.
    static func checkKind(_ entry: TarEntry) throws(InstallError) {
        switch entry.kind {
        case .file, .directory, .symlink:
            break
        case .hardLink(let target):
            throw InstallError(.unsafeBundle, "the bundle entry \(entry.path) is a hard link (to \(target)), which bundles may not hold")
        case .special(let flag):
            let what: String
            switch flag {
            case UInt8(ascii: "3"): what = "a character device"
            case UInt8(ascii: "4"): what = "a block device"
            case UInt8(ascii: "6"): what = "a FIFO"
            default: what = "of unknown type \(flag)"
            }
            throw InstallError(.unsafeBundle, "the bundle entry \(entry.path) is \(what), which bundles may not hold")
        }
        // Written files never get these bits anyway, but a bundle that asks for them is not
        // one a release build makes.
        guard entry.mode & 0o7000 == 0 else {
            throw InstallError(.unsafeBundle, "the bundle entry \(entry.path) has mode \(String(entry.mode, radix: 8)) with a setuid, setgid or sticky bit, which bundles may not hold")
        }
    }

    /// The path's components, refusing absolute paths, `..`, empty names and NUL bytes (a pax
    /// path may hold one; the file system would see only the part before it).
    static func safeComponents(_ path: String) throws(InstallError) -> [Substring] {
        guard !path.utf8.contains(0) else {
            throw InstallError(.unsafeBundle, "the bundle entry \(path.debugDescription) has a NUL byte in its path")
        }
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

    /// A link must be relative and, resolved from its own directory against the tree unpacked so
    /// far (following its links), stay inside the release.
    static func checkLink(_ destination: String, from directory: ArraySlice<Substring>, entry: String, tree: BundleTree) throws(InstallError) {
        // symlink(2) refuses longer targets anyway; the bound also keeps resolving cheap.
        guard !destination.isEmpty, destination.utf8.count < 4096 else {
            throw InstallError(.unsafeBundle, "the bundle link \(entry) has an empty or overlong target")
        }
        // The kernel would stop at a NUL, so `d/l1/..\0` would be `d/l1/..` to it but end in a
        // plain name to the resolver.
        guard !destination.utf8.contains(0) else {
            throw InstallError(.unsafeBundle, "the bundle link \(entry) has a NUL byte in its target")
        }
        guard !destination.hasPrefix("/") else { throw linkError(entry, destination, .outside) }
        let resolution = tree.resolve(destination, from: directory)
        guard resolution == .inside else { throw linkError(entry, destination, resolution) }
    }

    private static func linkError(_ entry: String, _ destination: String, _ resolution: BundleTree.Resolution) -> InstallError {
        switch resolution {
        case .tooDeep:
            InstallError(.unsafeBundle, "the bundle link \(entry) (to \(destination.prefix(200))) goes through too many links or names to follow")
        case .inside, .outside:
            InstallError(.unsafeBundle, "the bundle link \(entry) points outside the release (to \(destination.prefix(200)))")
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

    private static func writeFile(_ reader: TarReader, entry: TarEntry, at path: String, sync: Bool) throws(InstallError) {
        // Only the owner's execute bit matters; set-id bits and group/other write never survive.
        let mode: mode_t = entry.mode & 0o111 != 0 ? 0o755 : 0o644
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            if errno == EEXIST { throw InstallError(.unsafeBundle, "the bundle holds \(entry.path) twice") }
            throw InstallError(.io, "cannot create \(entry.path): \(Posix.lastError)")
        }
        defer { close(fd) }
        try reader.readContent { (bytes) throws(InstallError) in try Posix.writeAll(fd, bytes, path: path) }
        guard !sync || fsync(fd) == 0 else { throw InstallError(.io, "fsync of \(path) failed: \(Posix.lastError)") }
    }
}
