public import CascadeNet
public import CascadeWire
import Synchronization

/// A handshake the server did not complete: who tried, and the error (a `TLSError` whose
/// sentence says the cause and the fix, or a `NetError` for the handshake timeout).
public struct HandshakeFailure: Sendable {
    public let peer: SocketAddress?
    public let error: any Error

    /// The cause as one word ("expired", "unknown-ca", "timeout"...): a log field, a rate-limit key.
    public var reason: String {
        if let tls = error as? TLSError { return tls.reason?.rawValue ?? "other" }
        if (error as? NetError)?.code == .timedOut { return "timeout" }
        return "other"
    }

    /// The refused certificate's subject and identity, when the server verified one.
    public var peerCertificate: String? { (error as? TLSError)?.peerCertificate }

    public var message: String { (error as? TLSError)?.message ?? "\(error)" }
}

/// A TLS server for a router's methods: accepts on the group's loops, runs one RPCConnection
/// per client, and drains gracefully on shutdown.
public final class RPCServer: Sendable {
    public let localAddress: SocketAddress
    private let listener: TCPListener
    private let tls: TLSContext
    private let router: RPCRouter
    private let settings: Settings
    private let options: RPCOptions
    /// Connections and calls per peer identity, across connections (rpc.md §15.1).
    private let ledger: IdentityLedger
    private let connections = Mutex<[ObjectIdentifier: RPCConnection]>([:])
    private let acceptTask = Mutex<Task<Void, Never>?>(nil)
    /// Handshakes that failed (wrong CA, expired, no identity, timeouts...).
    private let failedHandshakes = Atomic<Int>(0)
    private let lastHandshakeError = Mutex<String?>(nil)
    /// Told about every failed accept (out of descriptors or memory; the loop keeps retrying),
    /// so the program can log it under its own policy.
    private let onAcceptError: (@Sendable (any Error) -> Void)?
    /// Told about every handshake and call (metrics).
    private let observer: (any RPCServerObserver)?
    /// Told about every handshake that failed (refused certificates, timeouts, scanners), so
    /// the program can log it under its own policy.
    private let onHandshakeFailure: (@Sendable (HandshakeFailure) -> Void)?

    public init(
        bindingTo address: SocketAddress, tls: TLSContext, router: RPCRouter,
        settings: Settings = .rpcDefaults, options: RPCOptions = RPCOptions(), group: EventLoopGroup = .shared,
        onAcceptError: (@Sendable (any Error) -> Void)? = nil, observer: (any RPCServerObserver)? = nil,
        onHandshakeFailure: (@Sendable (HandshakeFailure) -> Void)? = nil
    ) throws {
        self.observer = observer
        precondition(tls.side == .server, "an RPCServer needs a server TLS context")
        self.listener = try TCPListener(bindingTo: address, group: group)
        self.localAddress = listener.localAddress
        self.tls = tls
        self.router = router
        self.settings = settings
        self.options = options
        self.onAcceptError = onAcceptError
        self.onHandshakeFailure = onHandshakeFailure
        self.ledger = IdentityLedger(maxConnections: options.maxConnectionsPerIdentity, maxStreams: options.maxStreamsPerIdentity)
    }

    /// Connections and active calls `peer` holds on this server now.
    public func usage(of peer: PeerIdentity) -> (connections: Int, streams: Int) {
        ledger.usage(of: peer)
    }

    /// Starts accepting connections in the background.
    public func start() {
        let task = Task { await self.acceptLoop() }
        acceptTask.withLock { $0 = task }
    }

    public var connectionCount: Int { connections.withLock { $0.count } }
    public var handshakeFailures: Int { failedHandshakes.load(ordering: .relaxed) }
    public var lastHandshakeFailure: String? { lastHandshakeError.withLock { $0 } }

    private func acceptLoop() async {
        var backoff = Duration.milliseconds(10)
        while !Task.isCancelled {
            let socket: Socket
            do {
                socket = try await listener.accept()
                backoff = .milliseconds(10)
            } catch {
                if Task.isCancelled { return }
                onAcceptError?(error)
                // Out of fds or memory: wait and retry rather than spin or stop serving.
                try? await EventLoopGroup.shared.next().sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
                continue
            }
            // The connection's tasks run on its socket's loop thread.
            Task(executorPreference: socket.loop) { await self.serve(socket) }
        }
    }

    private func serve(_ socket: Socket) async {
        let connection: TLSConnection
        let remote = socket.remoteAddress
        do {
            connection = try await tls.accept(socket)
        } catch {
            failedHandshakes.add(1, ordering: .relaxed)
            lastHandshakeError.withLock { $0 = "\(error)" }
            observer?.handshakeRefused(error)
            onHandshakeFailure?(HandshakeFailure(peer: remote, error: error))
            return
        }
        observer?.handshakeAccepted(resumed: connection.isResumed)
        let slot = ledger.openConnection(connection.peer)
        let rpc = RPCConnection(
            transport: connection, side: .server, peer: connection.peer, settings: settings,
            router: router, options: options, loop: connection.socket.loop, interceptors: [], identity: slot,
            observer: observer)
        if slot == nil {
            rpc.refuse(code: .enhanceYourCalm, reason: "\(connection.peer) already has \(ledger.maxConnections) connections open")
        }
        let key = ObjectIdentifier(rpc)
        connections.withLock { $0[key] = rpc }
        await rpc.run()
        connections.withLock { $0[key] = nil }
        slot?.close()
    }

    /// Stops accepting, drains every connection (calls in flight get up to `drainTimeout`),
    /// and returns when all connections have closed.
    public func shutdown(drainTimeout: Duration? = nil) async {
        let task = acceptTask.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        task?.cancel()
        listener.close()
        await task?.value
        let open = connections.withLock { Array($0.values) }
        let timeout = drainTimeout ?? options.drainTimeout
        await withTaskGroup(of: Void.self) { group in
            for connection in open {
                group.addTask { await connection.drain(timeout: timeout) }
            }
        }
        let loop = EventLoopGroup.shared.next()
        while connectionCount > 0 {
            try? await loop.sleep(for: .milliseconds(10))
        }
    }
}
