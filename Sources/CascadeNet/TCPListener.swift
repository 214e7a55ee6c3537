#if canImport(Glibc)
import Glibc
#endif
import CCascadeShims

/// A listening TCP socket. Accepted connections are spread over a group's loops.
public final class TCPListener: Sendable {
    private let socket: Socket
    private let group: EventLoopGroup
    /// The bound address, with the real port when 0 was asked for.
    public let localAddress: SocketAddress

    /// A deep backlog: a fleet reconnecting at once after a restart must not overflow it
    /// (the kernel caps it at net.core.somaxconn).
    public init(bindingTo address: SocketAddress, group: EventLoopGroup = .shared, backlog: Int32 = 4096) throws(NetError) {
        let fd = Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NetError.system("socket", errno: errno) }
        let socket = try Socket(taking: fd, loop: group.next())
        socket.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
        if address.isIPv6 { socket.setOption(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
        guard address.withSockAddr({ bind(fd, $0, $1) }) == 0 else {
            throw NetError.system("bind to \(address)", errno: errno)
        }
        guard listen(fd, backlog) == 0 else { throw NetError.system("listen on \(address)", errno: errno) }
        guard let bound = socket.localAddress else { throw NetError.system("getsockname", errno: errno) }
        self.socket = socket
        self.group = group
        self.localAddress = bound
    }

    /// Waits for the next connection. Throws `.closed` once the listener is closed.
    public func accept() async throws -> Socket {
        while true {
            guard !socket.closed else { throw NetError(.closed, "the listener on \(localAddress) is closed") }
            let fd = cascade_accept(socket.fd)
            if fd >= 0 {
                let accepted = try Socket(taking: fd, loop: group.next())
                accepted.setOption(Int32(IPPROTO_TCP), TCP_NODELAY, 1)
                return accepted
            }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EAGAIN: try await socket.wait(for: .readable)
            default: throw NetError.system("accept on \(localAddress)", errno: errno)
            }
        }
    }

    public func close() {
        socket.close()
    }
}
