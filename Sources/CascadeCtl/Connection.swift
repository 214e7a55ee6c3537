import CascadeAPI
import CascadeCLI
import CascadeNet
import CascadeRPC
import CascadeWire
#if canImport(Glibc)
import Glibc
#endif

/// A connection to the coordinator built from the global options (`--coordinator`, `--ca`,
/// `--cert`, `--key`, `--timeout`), with every failure turned into one sentence for people.
final class Connection: Sendable {
    let address: SocketAddress
    /// As the user wrote it, for messages.
    let addressText: String
    let timeout: Duration
    private let client: RPCClient

    init(_ context: CommandContext) throws(CLIError) {
        let arguments = context.arguments
        addressText = try arguments.string("coordinator")
        timeout = try arguments.duration("timeout")
        guard timeout > .zero else {
            throw CLIError.usage("invalid value for '--timeout': expected a duration above zero such as 30s")
        }
        address = try Self.resolve(addressText, source: arguments.source(of: "coordinator"))
        let ca = try arguments.string("ca"), cert = try arguments.string("cert"), key = try arguments.string("key")
        for (option, path) in [("ca", ca), ("cert", cert), ("key", key)] where access(path, R_OK) != 0 {
            let reason = String(cString: strerror(errno))
            throw CLIError.failure("cannot read the --\(option) file \(path): \(reason)")
        }
        let configuration = TLSConfiguration(
            trustRootsFile: ca, certificateChainFile: cert, privateKeyFile: key,
            handshakeTimeout: min(timeout, .seconds(30)))
        let tls: TLSContext
        do {
            tls = try TLSContext(configuration: configuration, side: .client)
        } catch {
            throw CLIError.failure("the TLS files are not usable: \(error.message); check --ca, --cert and --key")
        }
        client = RPCClient(target: address, tls: tls, expectedRole: .coordinator,
                           backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(1)))
    }

    deinit { client.close() }

    /// One unary call with the `--timeout` deadline.
    func call<Request, Response>(_ method: RPCMethod<Request, Response>, _ request: Request) async throws(CLIError) -> Response {
        do {
            let connection = try await connect()
            return try await connection.unary(method, request, options: CallOptions(timeout: timeout))
        } catch {
            throw explain(error)
        }
    }

    /// A connection within `--timeout` (the TCP connect and TLS handshake).
    func connect() async throws(CLIError) -> RPCConnection {
        do {
            return try await client.withConnection { $0 }
        } catch {
            throw explain(error)
        }
    }

    /// One sentence for any error of a call: the server's own message for refusals, the
    /// address and the options to check for connection failures.
    func explain(_ error: any Error) -> CLIError {
        if let error = error as? CLIError { return error }
        let check = "check --coordinator and --ca"
        if let error = error as? RPCError {
            switch error.code {
            case .unavailable where error.message.hasPrefix("cannot reach"):
                return CLIError.failure("cannot connect to the coordinator at \(addressText): \(Self.cause(error.message)); \(check)")
            case .unavailable:
                return CLIError.failure("the coordinator at \(addressText) is unavailable: \(error.message)")
            case .deadlineExceeded:
                return CLIError.failure("the coordinator at \(addressText) did not answer within \(HumanFormat.duration(timeout)) (--timeout)")
            case .permissionDenied:
                return CLIError.failure("\(error.message); --cert must be an operator certificate (cascade://operator/<id>)")
            default:
                return CLIError.failure(error.message)
            }
        }
        if let error = error as? TLSError {
            return CLIError.failure("TLS with the coordinator at \(addressText) failed: \(error.message); check --ca, --cert and --key")
        }
        if let error = error as? NetError {
            return CLIError.failure("cannot connect to the coordinator at \(addressText): \(error.message); \(check)")
        }
        return CLIError.failure("talking to the coordinator at \(addressText) failed: \(error)")
    }

    /// The part after "cannot reach <address>: ".
    private static func cause(_ message: String) -> String {
        guard let range = message.range(of: ": ") else { return message }
        return String(message[range.upperBound...])
    }

    /// `HOST:PORT` (port 7400 when left out); a literal IP, `localhost`, or a name resolved by the system.
    static func resolve(_ text: String, source: ValueSource?) throws(CLIError) -> SocketAddress {
        do {
            return try SocketAddress(parsing: text, defaultPort: 7400)
        } catch {
            guard let (host, port) = splitHostPort(text), !host.isEmpty,
                  let resolved = lookUp(host, port: port) else {
                let suffix: String
                switch source {
                case .environment(let name): suffix = " (from \(name))"
                case .config(let path, let line): suffix = " (from \(path) line \(line))"
                default: suffix = ""
                }
                throw CLIError.usage("invalid value '\(text)' for '--coordinator'\(suffix): \(error.message)")
            }
            return resolved
        }
    }

    private static func splitHostPort(_ text: String) -> (String, UInt16)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return (text, 7400)
        case 2: return UInt16(parts[1]).map { (String(parts[0]), $0) }
        default: return nil
        }
    }

    private static func lookUp(_ host: String, port: UInt16) -> SocketAddress? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return nil }
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
        return nil
    }
}
