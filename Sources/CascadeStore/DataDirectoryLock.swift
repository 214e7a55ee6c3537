#if canImport(Glibc)
import Glibc
#endif

/// flock(2): the function, which Swift would otherwise take for the struct of the same name.
private func lockFile(_ fd: Int32, _ operation: Int32) -> Int32 {
    let call: (Int32, Int32) -> Int32 = flock
    return call(fd, operation)
}

/// An exclusive lock on a coordinator's data directory (`DIR/lock`, holding the owner's pid),
/// held while this value lives: two coordinators on one database would run two rollout engines.
///
/// flock, not a pid file alone: the kernel drops the lock when the process dies, even by
/// SIGKILL, so a crash never leaves a stale lock behind; the pid in the file only names the
/// holder in the refusal. flock locks belong to the open file, so a second lock taken in the
/// same process (a test) is refused too.
public final class DataDirectoryLock: Sendable {
    /// The lock file's name inside the data directory.
    public static let fileName = "lock"

    public let path: String
    private let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Takes the lock on `dataDirectory` (which must exist) and records this process's pid in
    /// it. Throws `.locked`, naming the holder's pid, when another coordinator holds it.
    public static func acquire(dataDirectory: String) throws(StoreError) -> DataDirectoryLock {
        let path = "\(dataDirectory)/\(fileName)"
        // No O_TRUNC: the file may be the holder's, and its pid is what the refusal reports.
        let fd = try FileIO.open(path, O_RDWR | O_CREAT | O_NOFOLLOW)
        while lockFile(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            let holder = recordedPid(fd)
            close(fd)
            guard code == EWOULDBLOCK else {
                throw StoreError(.io, "cannot lock the data directory \(dataDirectory): \(String(cString: strerror(code)))")
            }
            let who = holder.map { "another coordinator (pid \($0))" } ?? "another coordinator (its pid is not yet in \(path))"
            throw StoreError(.locked, "\(who) is using the data directory \(dataDirectory); stop it first or choose another --data")
        }
        let lock = DataDirectoryLock(path: path, fd: fd)
        let text = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0 else { throw FileIO.failure("truncate", path) }
        try FileIO.writeAll(fd, text, at: 0, path: path)
        return lock
    }

    /// The pid the holder wrote, if it has written one yet.
    private static func recordedPid(_ fd: Int32) -> Int32? {
        guard let bytes = try? FileIO.read(fd, count: 32, at: 0, path: "") else { return nil }
        let digits = bytes.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return Int32(String(decoding: digits, as: UTF8.self)).flatMap { $0 > 0 ? $0 : nil }
    }
}
