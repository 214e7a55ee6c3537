public import CascadeNet

/// What a client interceptor knows about a call before it starts.
public struct ClientCallInfo: Sendable {
    public let method: String
    /// The server, from its verified certificate.
    public let peer: PeerIdentity?
}

/// Wraps every call a client connection makes: logging, metrics, adding metadata. An
/// interceptor calls `next` (at most once) to run the call, possibly with changed options,
/// and sees its result or error; it may also fail the call without running it.
public protocol ClientInterceptor: Sendable {
    func intercept<T: Sendable>(
        _ call: ClientCallInfo, options: CallOptions, next: (CallOptions) async throws -> T
    ) async throws -> T
}

/// Wraps every handler a server runs, after the method's role check: logging, metrics,
/// finer authorization. Throwing an RPCError ends the call with that status; `next` runs the
/// handler (or the next interceptor).
public protocol ServerInterceptor: Sendable {
    func intercept(_ context: ServerContext, next: () async throws -> Void) async throws
}

extension RPCConnection {
    /// Runs `body` through the client interceptors, first registered outermost.
    func intercepted<T: Sendable>(
        _ method: String, _ options: CallOptions, _ body: (CallOptions) async throws -> T
    ) async throws -> T {
        if clientInterceptors.isEmpty { return try await body(options) }
        return try await Self.chain(clientInterceptors[...], ClientCallInfo(method: method, peer: peer), options, body)
    }

    private static func chain<T: Sendable>(
        _ rest: ArraySlice<any ClientInterceptor>, _ info: ClientCallInfo, _ options: CallOptions,
        _ body: (CallOptions) async throws -> T
    ) async throws -> T {
        guard let first = rest.first else { return try await body(options) }
        return try await first.intercept(info, options: options) { changed in
            try await chain(rest.dropFirst(), info, changed, body)
        }
    }
}

extension RPCRouter {
    /// Runs a handler through the server interceptors, first registered outermost.
    func run(_ handler: () async throws -> Void, context: ServerContext) async throws {
        try await Self.chain(interceptors[...], context, handler)
    }

    private static func chain(
        _ rest: ArraySlice<any ServerInterceptor>, _ context: ServerContext, _ handler: () async throws -> Void
    ) async throws {
        guard let first = rest.first else { return try await handler() }
        try await first.intercept(context) { try await chain(rest.dropFirst(), context, handler) }
    }
}
