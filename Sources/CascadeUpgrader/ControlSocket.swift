import CascadeLog
public import CascadeInstall
import Foundation
#if canImport(Glibc)
import Glibc
#endif

private let log = Logger("control")

/// The upgrader's Unix socket in `<root>/state`: one request line, one reply line per
/// connection. The file is 0600 in a 0700 directory, and every peer's uid is checked with
/// SO_PEERCRED, so only the owner of the agent can talk to it.
public final class ControlServer: Sendable {
    public let path: String
    private let fd: Int32

    public init(path: String) throws(InstallError) {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw InstallError(.io, "cannot create a Unix socket: \(Posix.lastError)") }
        // Only the lock holder binds, so a socket file left here belongs to a dead upgrader.
        unlink(path)
        var address = try ControlSocket.address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o600) == 0, listen(fd, 16) == 0 else {
            let reason = Posix.lastError
            close(fd)
            throw InstallError(.io, "cannot listen on \(path): \(reason)")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Accepts connections on a background thread; `handler` maps a request line to a reply line.
    public func serve(_ handler: @escaping @Sendable (String) -> String) {
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    log.warning("accept on \(path) failed: \(Posix.lastError)")
                    return
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                Thread.detachNewThread { ControlSocket.answer(client, handler) }
            }
        }
    }
}

/// The client side and the shared pieces of the control socket.
public enum ControlSocket {
    /// Sends one request line to the upgrader and returns its reply line.
    public static func request(_ path: String, _ line: String, timeout: Duration = .seconds(5)) throws(InstallError) -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw InstallError(.io, "cannot create a Unix socket: \(Posix.lastError)") }
        defer { close(fd) }
        setTimeout(fd, timeout)
        var address = try address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw InstallError(.peer, "the upgrader is not answering on \(path): \(Posix.lastError)") }
        guard peerUID(fd) == geteuid() else {
            throw InstallError(.peer, "the process on \(path) belongs to another user; refusing to talk to it")
        }
        try send(fd, line)
        guard let reply = receiveLine(fd) else {
            throw InstallError(.peer, "the upgrader closed \(path) without answering \"\(line.prefix(40))\"")
        }
        return reply
    }

    static func answer(_ fd: Int32, _ handler: @Sendable (String) -> String) {
        defer { close(fd) }
        setTimeout(fd, .seconds(5))
        guard peerUID(fd) == geteuid() else {
            log.warning("refused a control connection from another user (uid \(peerUID(fd).map(String.init) ?? "unknown"))")
            return
        }
        guard let line = receiveLine(fd) else { return }
        try? send(fd, handler(line))
    }

    static func address(_ path: String) throws(InstallError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw InstallError(.layout, "the socket path \(path) is longer than \(capacity - 1) bytes; use a shorter root")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// The uid of the process at the other end (SO_PEERCRED's struct ucred: pid, uid, gid).
    static func peerUID(_ fd: Int32) -> UInt32? {
        var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { return nil }
        return credentials.1
    }

    private static func setTimeout(_ fd: Int32, _ timeout: Duration) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    private static func send(_ fd: Int32, _ line: String) throws(InstallError) {
        let bytes = Array((line + "\n").utf8)
        var failure: InstallError?
        bytes.withUnsafeBytes { raw in
            do throws(InstallError) { try Posix.writeAll(fd, raw, path: "the control socket") } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// One line of at most 4 KiB (a longer one is not a request of ours).
    private static func receiveLine(_ fd: Int32) -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < 4096 {
            let count = read(fd, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return nil }
            if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return nil
    }
}
