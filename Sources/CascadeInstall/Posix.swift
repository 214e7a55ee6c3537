import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Thin, error-checked wrappers over the POSIX calls the install layer makes.
public enum Posix {
    /// The text of the current `errno`.
    public static var lastError: String { String(cString: strerror(errno)) }

    /// Writes every byte of `bytes` to `fd`, retrying on EINTR and short writes.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(InstallError) {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw InstallError(.io, "writing \(path) failed: \(lastError)")
            }
            offset += written
        }
    }

    /// A pipe whose ends are close-on-exec (Glibc's pipe2 is not visible to Swift).
    public static func makePipe(_ ends: inout [Int32]) -> Int32 {
        guard pipe(&ends) == 0 else { return -1 }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return 0
    }

    /// Makes a rename or a new entry in `directory` durable.
    public static func fsyncDirectory(_ directory: String) throws(InstallError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw InstallError(.io, "cannot open directory \(directory): \(lastError)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw InstallError(.io, "fsync of \(directory) failed: \(lastError)") }
    }

    /// Writes `contents` to `path` atomically: a temporary file in the same directory, fsynced,
    /// renamed over `path`, then the directory fsynced. A crash leaves the old or the new file.
    public static func writeAtomically(_ path: String, _ contents: [UInt8], mode: UInt32 = 0o600) throws(InstallError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw InstallError(.io, "cannot create \(temporary): \(lastError)") }
        do throws(InstallError) {
            var failure: InstallError?
            contents.withUnsafeBytes { raw in
                do throws(InstallError) { try writeAll(fd, raw, path: temporary) } catch { failure = error }
            }
            if let failure { throw failure }
            guard fsync(fd) == 0 else { throw InstallError(.io, "fsync of \(temporary) failed: \(lastError)") }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = lastError
            unlink(temporary)
            throw InstallError(.io, "cannot rename \(temporary) to \(path): \(reason)")
        }
        try fsyncDirectory(directory.isEmpty ? "." : directory)
    }

    /// Reads a small file whole; nil when it does not exist.
    public static func readFile(_ path: String, limit: Int = 1 << 20) throws(InstallError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw InstallError(.io, "cannot open \(path): \(lastError)")
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw InstallError(.io, "reading \(path) failed: \(lastError)")
            }
            if count == 0 { return out }
            out.append(contentsOf: buffer[0..<count])
            if out.count > limit { throw InstallError(.io, "\(path) is larger than \(limit) bytes") }
        }
    }

    /// Reads a small text file, trimmed of surrounding whitespace; nil when it does not exist.
    public static func readText(_ path: String) throws(InstallError) -> String? {
        try readFile(path).map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// The file type bits of `path` without following a final symlink; nil when it does not exist.
    public static func fileType(_ path: String) -> UInt32? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    /// Creates `path` and any missing parents with `mode`.
    public static func makeDirectories(_ path: String, mode: UInt32 = 0o755) throws(InstallError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/\(component)"
            if mkdir(partial, mode) != 0 && errno != EEXIST {
                throw InstallError(.io, "cannot create directory \(partial): \(lastError)")
            }
        }
    }

    /// Removes `path` and everything below it, never following symlinks; a missing path is fine.
    public static func removeTree(_ path: String) {
        guard let type = fileType(path) else { return }
        if type == S_IFDIR {
            for name in names(path) { removeTree("\(path)/\(name)") }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// The names in `directory` in no order, from readdir (a refused bundle's tree is removed
    /// with this; FileManager costs several times more per entry).
    static func names(_ directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The names in `directory` (empty when it does not exist).
    public static func list(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }
}
