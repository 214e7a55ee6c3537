#if canImport(Glibc)
import Glibc
#endif

// Open-file-description locks (Linux ≥ 3.15). Glibc defines these only under _GNU_SOURCE, which
// Swift's Glibc module does not import, so the stable kernel values are spelled out here.
private let F_OFD_GETLK: Int32 = 36
private let F_OFD_SETLK: Int32 = 37
private let F_OFD_SETLKW: Int32 = 38

/// An exclusive lock on a file, held while this value lives. The kernel drops it when the
/// process dies (even by SIGKILL), so "the lock is held" means "its owner is alive": the pair
/// uses one per program to stay single-instance and to see whether the other one runs.
/// OFD locks (not flock) because they can be tested without taking them (F_OFD_GETLK), so a
/// probe never makes a starting process believe another instance holds its lock.
public final class FileLock: Sendable {
    public let path: String
    private let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Takes the lock, or returns nil when another open file (any process) holds it.
    public static func tryAcquire(_ path: String) throws(InstallError) -> FileLock? {
        try acquire(path, wait: false)
    }

    /// Takes the lock, waiting for the current holder to release it.
    public static func acquireWaiting(_ path: String) throws(InstallError) -> FileLock {
        guard let lock = try acquire(path, wait: true) else {
            throw InstallError(.io, "cannot lock \(path)")
        }
        return lock
    }

    private static func acquire(_ path: String, wait: Bool) throws(InstallError) -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw InstallError(.io, "cannot open lock file \(path): \(Posix.lastError)") }
        var request = wholeFileWriteLock()
        while fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &request) != 0 {
            if errno == EINTR { continue }
            let code = errno
            close(fd)
            if code == EAGAIN || code == EACCES { return nil }
            throw InstallError(.io, "cannot lock \(path): \(String(cString: strerror(code)))")
        }
        return FileLock(path: path, fd: fd)
    }

    /// Whether some process holds the lock at `path` (without taking it).
    public static func isHeld(_ path: String) -> Bool {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var request = wholeFileWriteLock()
        guard fcntl(fd, F_OFD_GETLK, &request) == 0 else { return false }
        return request.l_type != Int16(F_UNLCK)
    }

    private static func wholeFileWriteLock() -> flock {
        var request = flock()
        request.l_type = Int16(F_WRLCK)
        request.l_whence = Int16(SEEK_SET)
        request.l_start = 0
        request.l_len = 0
        request.l_pid = 0
        return request
    }
}
