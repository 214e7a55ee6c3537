public import CascadeNet
public import CascadeWire
import Synchronization

/// Exponential backoff with jitter between failed connection attempts.
public struct Backoff: Sendable {
    public var initial: Duration = .milliseconds(100)
    public var maximum: Duration = .seconds(30)

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The wait before attempt `failures + 1`: initial × 2^failures, capped, times a random
    /// factor in [0.5, 1] so a fleet reconnecting at once spreads out.
    public func delay(afterFailures failures: Int) -> Duration {
        guard failures > 0 else { return .zero }
        let capped = min(maximum, initial * (1 << min(failures - 1, 30)))
        return capped * Double.random(in: 0.5...1.0)
    }
}

/// A client for one server: keeps a connection, reconnects (with backoff and TLS session
/// resumption) when it fails or the server sends GOAWAY, and retries calls that the server
/// never processed.
public final class RPCClient: Sendable {
    public let target: SocketAddress
    private let tls: TLSContext
    private let local: SocketAddress?
    private let expectedRole: PeerIdentity.Role?
    private let settings: Settings
    private let options: RPCOptions
    private let backoff: Backoff

    private struct State {
        var current: RPCConnection?
        var connecting: Task<RPCConnection, any Error>?
        var failures = 0
        var closed = false
    }

    private let state = Mutex(State())
    private let interceptors: [any ClientInterceptor]

    public init(
        target: SocketAddress, tls: TLSContext, from local: SocketAddress? = nil,
        expectedRole: PeerIdentity.Role? = nil, settings: Settings = .rpcDefaults,
        options: RPCOptions = RPCOptions(), backoff: Backoff = Backoff(), interceptors: [any ClientInterceptor] = []
    ) {
        self.interceptors = interceptors
        precondition(tls.side == .client, "an RPCClient needs a client TLS context")
        self.target = target
        self.tls = tls
        self.local = local
        self.expectedRole = expectedRole
        self.settings = settings
        self.options = options
        self.backoff = backoff
    }

    /// A usable connection: the current one, or a new one.
    public func connection() async throws -> RPCConnection {
        let task = try state.withLock { state throws(RPCError) -> Task<RPCConnection, any Error> in
            if state.closed { throw RPCError(.unavailable, "the client for \(target) is closed") }
            if let current = state.current, current.isUsable {
                return Task { current }
            }
            state.current = nil
            if let connecting = state.connecting { return connecting }
            let failures = state.failures
            let task = Task { try await self.connect(afterFailures: failures) }
            state.connecting = task
            return task
        }
        return try await task.value
    }

    private func connect(afterFailures failures: Int) async throws -> RPCConnection {
        let loop = EventLoopGroup.shared.next()
        do {
            let wait = backoff.delay(afterFailures: failures)
            if wait > .zero { try await loop.sleep(for: wait) }
            let transport = try await tls.connect(to: target, from: local, on: loop)
            if let expectedRole, transport.peer.role != expectedRole {
                await transport.close()
                throw RPCError(.unavailable, "\(target) is not a \(expectedRole.rawValue): it presented the certificate of \(transport.peer) (\(transport.peer.uri))")
            }
            let connection = RPCConnection(
                transport: transport, side: .client, peer: transport.peer, settings: settings, options: options, loop: loop,
                interceptors: interceptors)
            Task(executorPreference: loop) { await connection.run() }
            state.withLock { state in
                state.current = connection
                state.connecting = nil
                state.failures = 0
            }
            return connection
        } catch {
            state.withLock { state in
                state.connecting = nil
                state.failures += 1
            }
            if let error = error as? RPCError { throw error }
            throw RPCError.connectionFailed("cannot reach \(target): ", error, isSafeToRetry: true)
        }
    }

    /// Runs `body` on a connection; when the call was never processed (refused, GOAWAY,
    /// connection lost before sending), retries it once on a fresh connection.
    public func withConnection<T: Sendable>(_ body: (RPCConnection) async throws -> T) async throws -> T {
        do {
            return try await body(connection())
        } catch let error as RPCError where error.isSafeToRetry {
            return try await body(connection())
        }
    }

    public func unary<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, options: CallOptions = CallOptions()
    ) async throws -> Response {
        try await withConnection { try await $0.unary(method, request, options: options) }
    }

    /// Closes the current connection and refuses further calls.
    public func close() {
        let current = state.withLock { state -> RPCConnection? in
            state.closed = true
            state.connecting?.cancel()
            return state.current
        }
        current?.close(RPCError(.cancelled, "the client was closed"))
    }
}

extension RPCConnection {
    /// True when the TLS session under this connection was resumed (no full handshake).
    public var isResumedTLS: Bool { (transport as? TLSConnection)?.isResumed ?? false }

    /// Bytes received and held for the application (queued messages), over all calls.
    public var bufferedInboundBytes: Int {
        state.withLock { $0.streams.values.reduce(0) { $0 + $1.queuedBytes } }
    }

    /// Open, and not told by the server to go away.
    public var isUsable: Bool {
        state.withLock { $0.closed == nil && $0.goawayLastStreamID == nil }
    }
}
