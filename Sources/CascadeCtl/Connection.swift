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
///
/// `--timeout` is the whole command's deadline, counted from here: every call, and the TCP
/// connect and TLS handshake before it, ends by then (streams, once open, have none).
final class Connection: Sendable {
    let address: SocketAddress
    /// As the user wrote it, for messages.
    let addressText: String
    let timeout: Duration
    let deadline: ContinuousClock.Instant
    private let client: RPCClient
    /// Whether a connection was made, for the sentence a deadline gets.
    private let connected = Locked(false)
    /// The identity of `--cert`, for the sentence a refused call gets.
    private let localIdentity: PeerIdentity?
    private let certificateFile: String

    init(_ context: CommandContext) throws(CLIError) {
        let arguments = context.arguments
        addressText = try arguments.string("coordinator")
        timeout = try arguments.duration("timeout")
        guard timeout > .zero else {
            throw CLIError.usage("invalid value for '--timeout': expected a duration above zero such as 30s")
        }
        deadline = ContinuousClock.now + timeout
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
        localIdentity = try? tls.localIdentity
        certificateFile = cert
        // The client's own backoff between attempts stays well inside one --timeout.
        client = RPCClient(target: address, tls: tls, expectedRole: .coordinator,
                           backoff: Backoff(initial: min(.milliseconds(100), timeout / 10), maximum: min(.seconds(1), timeout / 4)))
    }

    deinit { client.close() }

    /// One unary call, ending by the command's deadline.
    func call<Request, Response>(_ method: RPCMethod<Request, Response>, _ request: Request) async throws(CLIError) -> Response {
        do {
            return try await unary(method, request)
        } catch {
            throw explain(error)
        }
    }

    /// `call` with the coordinator's error as it came (for a caller that handles some codes).
    func unary<Request, Response>(_ method: RPCMethod<Request, Response>, _ request: Request) async throws -> Response {
        let (client, connected, deadline) = (self.client, self.connected, self.deadline)
        return try await racing(until: deadline, connected: connected) {
            try await client.withConnection { connection in
                connected.withLock { $0 = true }
                // The server gets what is left of the deadline, so it stops when we do.
                let left = max(deadline - ContinuousClock.now, .milliseconds(1))
                return try await connection.unary(method, request, options: CallOptions(timeout: left))
            }
        }
    }

    /// A connection by the command's deadline (for a stream, which then has no deadline).
    func connect() async throws(CLIError) -> RPCConnection {
        try await connect(by: deadline)
    }

    /// A connection within one `--timeout` from now (and by `giveUpAt`): a watch reconnecting.
    func reconnect(giveUpAt: ContinuousClock.Instant?) async throws(CLIError) -> RPCConnection {
        let attempt = ContinuousClock.now + timeout
        return try await connect(by: giveUpAt.map { min($0, attempt) } ?? attempt)
    }

    private func connect(by deadline: ContinuousClock.Instant) async throws(CLIError) -> RPCConnection {
        let (client, connected) = (self.client, self.connected)
        do {
            // The body returns as soon as it is connected, so a deadline here always means not connected.
            return try await racing(until: deadline, connected: Locked(false)) {
                let connection = try await client.withConnection { $0 }
                connected.withLock { $0 = true }
                return connection
            }
        } catch {
            throw explain(error)
        }
    }

    /// One sentence for any error of a call: the server's own message for refusals, the
    /// address and the options to check for connection failures.
    func explain(_ error: any Error) -> CLIError {
        if let error = error as? CLIError { return error }
        if let error = error as? DeadlineExpired {
            let limit = "\(HumanFormat.duration(timeout)) (--timeout)"
            guard error.connected else {
                return CLIError.failure(
                    "cannot connect to the coordinator at \(addressText) within \(limit): no TLS connection was established; check --coordinator")
            }
            return CLIError.failure("the coordinator at \(addressText) did not answer within \(limit)")
        }
        let check = "check --coordinator and --ca"
        if let error = error as? RPCError, let tls = error.tls, tls.reason != nil {
            return explain(tls)
        }
        if let error = error as? RPCError {
            switch error.code {
            case .unavailable where error.message.hasPrefix("cannot reach"):
                return CLIError.failure("cannot connect to the coordinator at \(addressText): \(Self.cause(error.message)); \(check)")
            case .unavailable:
                return CLIError.failure("the coordinator at \(addressText) is unavailable: \(error.message)")
            case .deadlineExceeded:
                return CLIError.failure("the coordinator at \(addressText) did not answer within \(HumanFormat.duration(timeout)) (--timeout)")
            case .permissionDenied:
                if let identity = localIdentity, identity.role != .operator {
                    return CLIError.failure(
                        "the coordinator refused the call: --cert \(certificateFile) is the certificate of \(identity) (\(identity.uri)), "
                            + "and cascadectl needs an operator's (cascade://operator/<id>); give --cert and --key of an operator certificate (\(error.message))")
                }
                return CLIError.failure("\(error.message); --cert must be an operator certificate (cascade://operator/<id>)")
            default:
                return CLIError.failure(error.message)
            }
        }
        if let error = error as? TLSError {
            if error.reason != nil { return explain(error) }
            return CLIError.failure("TLS with the coordinator at \(addressText) failed: \(error.message); check --ca, --cert and --key")
        }
        if let error = error as? NetError {
            return CLIError.failure("cannot connect to the coordinator at \(addressText): \(error.message); \(check)")
        }
        return CLIError.failure("talking to the coordinator at \(addressText) failed: \(error)")
    }

    /// A refused handshake, either way: the TLS layer's sentence (cause and fix) with the
    /// coordinator named as such.
    private func explain(_ tls: TLSError) -> CLIError {
        var sentence = tls.explanation
        for (generic, named) in [("the server's certificate", "the coordinator's certificate"), ("the server ", "the coordinator ")] {
            if sentence.hasPrefix(generic) { sentence = named + sentence.dropFirst(generic.count) }
        }
        return CLIError.failure("TLS with the coordinator at \(addressText) failed: \(sentence)")
    }

    /// The part after "cannot reach <address>: ".
    private static func cause(_ message: String) -> String {
        guard let range = message.range(of: ": ") else { return message }
        return String(message[range.upperBound...])
    }

    /// `HOST:PORT` (port 7400 when left out); a literal IP, `localhost`, or a name resolved by the system.
    static func resolve(_ text: String, source: ValueSource?) throws(CLIError) -> SocketAddress {
        do {
            return try SocketAddress(resolving: text, defaultPort: 7400)
        } catch {
            let suffix: String
            switch source {
            case .environment(let name): suffix = " (from \(name))"
            case .config(let path, let line): suffix = " (from \(path) line \(line))"
            default: suffix = ""
            }
            throw CLIError.usage("invalid value '\(text)' for '--coordinator'\(suffix): \(error.message)")
        }
    }
}
