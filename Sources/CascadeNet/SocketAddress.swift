#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address and port, held as bytes so it can be hashed, compared and
/// cut into subnets.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6, network order.
    public let ipBytes: [UInt8]
    public let port: UInt16

    public var isIPv6: Bool { ipBytes.count == 16 }

    public init(ipBytes: [UInt8], port: UInt16) throws(NetError) {
        guard ipBytes.count == 4 || ipBytes.count == 16 else {
            throw NetError(.invalidAddress, "an IP address is 4 or 16 bytes, not \(ipBytes.count)")
        }
        self.ipBytes = ipBytes
        self.port = port
    }

    /// Parses a literal IP ("127.0.1.5", "::1") and a port.
    public init(ip: String, port: UInt16) throws(NetError) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, ip, &v4) == 1 {
            self.ipBytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, ip, &v6) == 1 {
            self.ipBytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            throw NetError(.invalidAddress, "\"\(ip)\" is not an IPv4 or IPv6 address")
        }
        self.port = port
    }

    /// Parses "host:port" or "[v6]:port"; the port may be omitted when `defaultPort` is given.
    /// The host is a literal IP or `localhost`; `init(resolving:)` also takes host names.
    public init(parsing text: String, defaultPort: UInt16? = nil) throws(NetError) {
        let (host, port) = try Self.split(text, defaultPort: defaultPort)
        try self.init(ip: host == "localhost" ? "127.0.0.1" : String(host), port: port)
    }

    /// Like `init(parsing:)`, and a host that is not a literal IP is resolved with the system's
    /// resolver (getaddrinfo: /etc/hosts, DNS), taking its first answer: "localhost:7400",
    /// "coordinator.internal:7400", "[fd00::5]:7400" or "10.0.0.5".
    public init(resolving text: String, defaultPort: UInt16? = nil) throws(NetError) {
        let (host, port) = try Self.split(text, defaultPort: defaultPort)
        // localhost is 127.0.0.1 as in `init(parsing:)`, whatever order the resolver prefers.
        if let literal = try? SocketAddress(ip: host == "localhost" ? "127.0.0.1" : String(host), port: port) {
            self = literal
            return
        }
        guard !host.isEmpty else { throw NetError(.invalidAddress, "\"\(text)\" has no host before the port") }
        self = try Self.lookUp(String(host), port: port)
    }

    /// The first address getaddrinfo gives for `host` (in its order: RFC 6724, /etc/gai.conf).
    static func lookUp(_ host: String, port: UInt16) throws(NetError) -> SocketAddress {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            let reason = status == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(status))
            throw NetError(
                .invalidAddress,
                "cannot resolve the host name \"\(host)\" (\(reason)); give an IP address or a name this host resolves")
        }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let raw = current.pointee.ai_addr {
                if current.pointee.ai_family == AF_INET {
                    let ip = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                    }
                    if let address = try? SocketAddress(ipBytes: ip, port: port) { return address }
                } else if current.pointee.ai_family == AF_INET6 {
                    let ip = raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    }
                    if let address = try? SocketAddress(ipBytes: ip, port: port) { return address }
                }
            }
            entry = current.pointee.ai_next
        }
        throw NetError(.invalidAddress, "the host name \"\(host)\" has no IPv4 or IPv6 address")
    }

    /// "host:port" → host and port (the port may be left out when `defaultPort` is given).
    private static func split(_ text: String, defaultPort: UInt16?) throws(NetError) -> (Substring, UInt16) {
        var host = Substring(text)
        var portText: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else {
                throw NetError(.invalidAddress, "\"\(text)\" has no closing ] after the IPv6 address")
            }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if rest.hasPrefix(":") { portText = rest.dropFirst() } else if !rest.isEmpty {
                throw NetError(.invalidAddress, "\"\(text)\" has text after the IPv6 address")
            }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        let port: UInt16
        if let portText {
            guard let value = UInt16(portText) else {
                throw NetError(.invalidAddress, "\"\(portText)\" in \"\(text)\" is not a port number (0-65535)")
            }
            port = value
        } else if let defaultPort {
            port = defaultPort
        } else {
            throw NetError(.invalidAddress, "\"\(text)\" has no port (expected host:port)")
        }
        return (host, port)
    }

    public var ipString: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        ipBytes.withUnsafeBytes { raw in
            _ = inet_ntop(isIPv6 ? AF_INET6 : AF_INET, raw.baseAddress, &buffer, socklen_t(buffer.count))
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var description: String {
        isIPv6 ? "[\(ipString)]:\(port)" : "\(ipString):\(port)"
    }

    /// The same address with another port.
    public func with(port: UInt16) -> SocketAddress {
        (try? SocketAddress(ipBytes: ipBytes, port: port)) ?? self
    }

    var family: Int32 { isIPv6 ? AF_INET6 : AF_INET }

    /// Calls `body` with a `sockaddr` for this address.
    func withSockAddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        if isIPv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: ipBytes) }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: ipBytes) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// Reads a `sockaddr_storage` filled by the kernel.
    init?(storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            var ip = address.sin_addr
            self.ipBytes = withUnsafeBytes(of: &ip) { Array($0) }
            self.port = UInt16(bigEndian: address.sin_port)
        case AF_INET6:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            var ip = address.sin6_addr
            self.ipBytes = withUnsafeBytes(of: &ip) { Array($0) }
            self.port = UInt16(bigEndian: address.sin6_port)
        default:
            return nil
        }
    }
}
