#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A non-blocking TCP socket registered with one event loop. Owns its fd.
///
/// `close()` shuts the socket down and fails anyone waiting on it, but the fd itself is
/// closed only in `deinit`, so no task can ever touch a number the kernel reused.
public final class Socket: Sendable {
    let fd: Int32
    public let loop: EventLoop
    let token: UInt64
    private let isClosed = Atomic<Bool>(false)

    /// Takes ownership of `fd`, makes it non-blocking and registers it.
    init(taking fd: Int32, loop: EventLoop) throws(NetError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            let saved = errno
            Glibc.close(fd)
            throw NetError.system("fcntl(O_NONBLOCK)", errno: saved)
        }
        do {
            self.token = try loop.register(fd: fd)
        } catch {
            Glibc.close(fd)
            throw error
        }
        self.fd = fd
        self.loop = loop
    }

    deinit {
        if !isClosed.load(ordering: .acquiring) { loop.deregister(token: token) }
        Glibc.close(fd)
    }

    public var closed: Bool { isClosed.load(ordering: .acquiring) }

    /// Shuts the connection down both ways; waiters fail with `.closed`. Idempotent.
    public func close() {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        loop.deregister(token: token)
    }

    /// Sends FIN: the peer reads end of stream; we can still read.
    public func shutdownWrite() {
        if !closed { shutdown(fd, Int32(SHUT_WR)) }
    }

    /// Waits until the socket is readable (or writable); fails with `.closed` after `close()`.
    func wait(for interest: EventLoop.Interest) async throws {
        try await loop.wait(token: token, for: interest)
    }

    /// Reads what is available, up to `maxLength` bytes, waiting if nothing is.
    /// Returns an empty array at end of stream.
    public func read(maxLength: Int) async throws -> [UInt8] {
        precondition(maxLength > 0, "read needs room for at least one byte")
        while true {
            var failure: Int32 = 0
            let bytes = [UInt8](unsafeUninitializedCapacity: maxLength) { buffer, count in
                let got = recv(fd, buffer.baseAddress, maxLength, 0)
                count = max(got, 0)
                if got < 0 { failure = errno }
            }
            if failure == 0 { return bytes }
            switch failure {
            case EINTR: continue
            case EAGAIN: try await wait(for: .readable)
            default: throw NetError.system("recv", errno: failure)
            }
        }
    }

    /// Writes all of `bytes`, waiting while the kernel's send buffer is full (back-pressure).
    public func write(_ bytes: [UInt8]) async throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            switch errno {
            case EINTR: continue
            case EAGAIN: try await wait(for: .writable)
            default: throw NetError.system("send", errno: errno)
            }
        }
    }

    public var localAddress: SocketAddress? { address(peer: false) }
    public var remoteAddress: SocketAddress? { address(peer: true) }

    private func address(peer: Bool) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        return result == 0 ? SocketAddress(storage: storage) : nil
    }

    func setOption(_ level: Int32, _ name: Int32, _ value: Int32) {
        var value = value
        _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }
}

extension Socket {
    /// Connects to `remote`, optionally from a chosen local address (tests bind agents to
    /// 127.0.A.B to emulate subnets). Never blocks the calling thread.
    public static func connect(
        to remote: SocketAddress, from local: SocketAddress? = nil, on loop: EventLoop
    ) async throws -> Socket {
        let fd = Glibc.socket(remote.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NetError.system("socket", errno: errno) }
        let socket = try Socket(taking: fd, loop: loop)
        if let local {
            socket.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
            let bound = local.withSockAddr { bind(fd, $0, $1) }
            guard bound == 0 else {
                throw NetError.system("bind to \(local)", errno: errno)
            }
        }
        let result = remote.withSockAddr { Glibc.connect(fd, $0, $1) }
        if result != 0 {
            guard errno == EINPROGRESS || errno == EINTR else {
                throw NetError.system("connect to \(remote)", errno: errno)
            }
            try await socket.wait(for: .writable)
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 { throw NetError.system("connect to \(remote)", errno: error) }
        }
        socket.setOption(Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        return socket
    }
}
