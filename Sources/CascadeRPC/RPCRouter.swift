public import CascadeNet
import Synchronization

/// What a server handler knows about its call.
public struct ServerContext: Sendable {
    public let method: String
    /// The caller, from its verified certificate.
    public let peer: PeerIdentity?
    public let metadata: [MetadataEntry]
    /// When the caller stops waiting, if it said.
    public let deadline: MonotonicTime?
    /// Where the caller connects from (source address, certificate IP SANs); nil on
    /// transports without a socket.
    public var endpoint: PeerEndpoint? = nil
}

/// A call a server refused with PERMISSION_DENIED: by the method's role check, before any
/// handler ran, or by the handler itself (a finer check: an agent acting for another id).
public struct DeniedCall: Sendable, Hashable {
    public let method: String
    /// The caller, from its verified certificate.
    public let peer: PeerIdentity?
    /// Where it connects from.
    public let address: SocketAddress?
    /// The status message the caller got.
    public let message: String
}

/// A server's methods: name → allowed roles and handler. Methods are registered before the
/// server starts; lookups afterwards only read.
public final class RPCRouter: Sendable {
    struct Registered: Sendable {
        let allowedRoles: Set<PeerIdentity.Role>
        let onEventLoop: Bool
        let handler: @Sendable (ServerCall) async throws -> Void
        /// A unary handler that never suspends: run inline on the loop once the request is
        /// complete (request bytes → response bytes), with no task for the call.
        var immediate: (@Sendable (ArraySlice<UInt8>, ServerContext) throws -> [UInt8])?
    }

    private let methods = Mutex<[String: Registered]>([:])
    private let interceptorList = Mutex<[any ServerInterceptor]>([])
    private let deniedObserver = Mutex<(@Sendable (DeniedCall) -> Void)?>(nil)
    /// Bumped by every registration, so what a connection remembers of a lookup goes stale.
    let generation = Atomic<Int>(0)

    public init() {}

    /// Adds an interceptor around every handler; the first added runs outermost. Add them
    /// before the server starts.
    public func intercept(_ interceptor: any ServerInterceptor) {
        interceptorList.withLock { $0.append(interceptor) }
    }

    var interceptors: [any ServerInterceptor] { interceptorList.withLock { $0 } }

    /// Calls `observer` for every call answered PERMISSION_DENIED (a log line, an audit event).
    /// Set it before the server starts; it runs on the connection's thread and must not block.
    public func onPermissionDenied(_ observer: @escaping @Sendable (DeniedCall) -> Void) {
        deniedObserver.withLock { $0 = observer }
    }

    func denied(_ method: String, peer: PeerIdentity?, address: SocketAddress?, message: String) {
        guard let observer = deniedObserver.withLock({ $0 }) else { return }
        observer(DeniedCall(method: method, peer: peer, address: address, message: message))
    }

    /// Registers the raw form every call shape is built on. `onEventLoop: true` runs the
    /// handler on the connection's event-loop thread (no thread hand-off): only for handlers
    /// that never block — no disk, no SQLite, no long computation.
    public func register(
        _ name: String, allowedRoles: Set<PeerIdentity.Role>, onEventLoop: Bool = false,
        _ handler: @escaping @Sendable (ServerCall) async throws -> Void
    ) {
        methods.withLock { $0[name] = Registered(allowedRoles: allowedRoles, onEventLoop: onEventLoop, handler: handler) }
        generation.add(1, ordering: .releasing)
    }

    /// Registers a unary method whose handler never suspends and never blocks (no disk, no
    /// SQLite, no locks held long): it runs on the connection's event-loop thread as soon as
    /// the request has arrived, with no task per call. Calls with a deadline or through
    /// interceptors take the ordinary path, in a task.
    public func unaryImmediate<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ handler: @escaping @Sendable (Request, ServerContext) throws -> Response
    ) {
        let immediate: @Sendable (ArraySlice<UInt8>, ServerContext) throws -> [UInt8] = { bytes, context in
            try handler(Self.decodeRequest(Request.self, bytes), context).serializedBytes()
        }
        let registered = Registered(
            allowedRoles: method.allowedRoles, onEventLoop: true,
            handler: { call in
                let request = try await Self.single(Request.self, from: call)
                try await call.respond(handler(request, call.context).serializedBytes())
            },
            immediate: immediate)
        methods.withLock { $0[method.name] = registered }
        generation.add(1, ordering: .releasing)
    }

    func lookup(_ name: String) -> Registered? {
        methods.withLock { $0[name] }
    }

    public var methodNames: [String] { methods.withLock { $0.keys.sorted() } }
}

/// The server's side of one call: receive requests, send responses.
public struct ServerCall: Sendable {
    public let context: ServerContext
    let connection: RPCConnection
    let streamID: UInt32

    /// The next request message (a slice of what arrived, not a copy); nil at the end.
    public func receive() async throws -> ArraySlice<UInt8>? {
        try await connection.receive(on: streamID)
    }

    public func send(_ message: [UInt8]) async throws {
        try await connection.send(message, on: streamID)
    }

    /// Sends a message encoded behind `MessageFraming.headroom` bytes (StreamWriter's path).
    func sendFramed(_ storage: consuming [UInt8]) async throws {
        try await connection.sendHeadroomed(storage, on: streamID)
    }

    /// Waits until the peer's windows could take a message of `bytes` bytes.
    func waitForWindow(_ bytes: Int) async throws {
        try await connection.waitForWindow(bytes, on: streamID)
    }

    /// Sends trailers with `error` now and fails the call's waits (`StreamWriter.finish`).
    func end(_ error: RPCError) {
        connection.abortServerStream(streamID, error)
    }

    /// Sends the last response message and OK trailers in one write when the windows allow
    /// (a unary response costs one TLS record, not two).
    public func respond(_ message: [UInt8]) async throws {
        if try connection.sendFinal(message, on: streamID) { return }
        try await connection.send(message, on: streamID)
    }
}
