public import CascadeNet
public import CascadeWire

/// A method's name, message types and the roles allowed to call it.
public struct RPCMethod<Request: WireMessage, Response: WireMessage>: Sendable {
    public let name: String
    public let allowedRoles: Set<PeerIdentity.Role>

    public init(_ name: String, allowedRoles: Set<PeerIdentity.Role>) {
        self.name = name
        self.allowedRoles = allowedRoles
    }
}

/// Per-call options on the client.
public struct CallOptions: Sendable {
    public var timeout: Duration?
    public var metadata: [MetadataEntry]

    public init(timeout: Duration? = nil, metadata: [MetadataEntry] = []) {
        self.timeout = timeout
        self.metadata = metadata
    }
}

/// Writes typed messages on a call; `write` waits for flow-control credit (back-pressure).
public struct StreamWriter<Message: WireMessage>: Sendable {
    /// Sends a message encoded behind `MessageFraming.headroom` bytes.
    let writeFramed: @Sendable (consuming [UInt8]) async throws -> Void
    /// Waits for the peer's credit for a message of so many bytes (server side; nil: none).
    var credit: (@Sendable (Int) async throws -> Void)?
    /// Ends the call now with a status (server side; nil: none).
    var end: (@Sendable (RPCError) -> Void)?

    init(writeFramed: @escaping @Sendable (consuming [UInt8]) async throws -> Void,
         credit: (@Sendable (Int) async throws -> Void)? = nil, end: (@Sendable (RPCError) -> Void)? = nil) {
        self.writeFramed = writeFramed
        self.credit = credit
        self.end = end
    }

    /// Holds the message until the peer's windows admit it, then queues it. A message the
    /// peer cannot take yet stays here, so a call holds at most this one beyond the window.
    public func write(_ message: Message) async throws {
        try await writeFramed(message.serializedBytes(headroom: MessageFraming.headroom))
    }

    /// Waits until the peer's window could take a message of about `bytes` bytes, before the
    /// handler produces it: a handler that reads from disk or builds a large message calls
    /// this first, so a reader that gives no credit costs no memory (rpc.md §15.1). The wait
    /// counts as blocked for the blocked-stream limit. Returns at once on a client.
    public func waitForWindow(bytes: Int) async throws {
        try await credit?(bytes)
    }

    /// Server side: ends the call at once with `error`'s status and message in its trailers,
    /// from any task, even while the handler waits for the client's next message: that wait,
    /// and any later write, then throws `error`, and the handler's own outcome is not sent
    /// (the call already has its trailers). For a handler that learns elsewhere that its call
    /// must stop (a newer call replaced it). Does nothing on a client or after the call ended.
    public func finish(with error: RPCError) {
        end?(error)
    }
}

/// Typed messages arriving on a call, as an async sequence.
public struct MessageStream<Message: WireMessage>: AsyncSequence, Sendable {
    let next: @Sendable () async throws -> ArraySlice<UInt8>?

    public struct AsyncIterator: AsyncIteratorProtocol {
        let next: @Sendable () async throws -> ArraySlice<UInt8>?

        public mutating func next() async throws -> Message? {
            guard let bytes = try await next() else { return nil }
            do {
                return try Message(serializedBytes: bytes)
            } catch {
                throw RPCError(.internal, "a \(Message.self) message did not decode: \(error.message)")
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(next: next)
    }
}

extension RPCRouter {
    public func unary<Request, Response>(
        _ method: RPCMethod<Request, Response>, onEventLoop: Bool = false,
        _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) {
        register(method.name, allowedRoles: method.allowedRoles, onEventLoop: onEventLoop) { call in
            let request = try await Self.single(Request.self, from: call)
            try await call.respond(handler(request, call.context).serializedBytes())
        }
    }

    public func serverStreaming<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ handler: @escaping @Sendable (Request, StreamWriter<Response>, ServerContext) async throws -> Void
    ) {
        register(method.name, allowedRoles: method.allowedRoles) { call in
            let request = try await Self.single(Request.self, from: call)
            try await handler(request, StreamWriter(writeFramed: call.sendFramed, credit: call.waitForWindow, end: call.end), call.context)
        }
    }

    public func clientStreaming<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ handler: @escaping @Sendable (MessageStream<Request>, ServerContext) async throws -> Response
    ) {
        register(method.name, allowedRoles: method.allowedRoles) { call in
            let response = try await handler(MessageStream(next: call.receive), call.context)
            try await call.respond(response.serializedBytes())
        }
    }

    public func bidirectional<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ handler: @escaping @Sendable (MessageStream<Request>, StreamWriter<Response>, ServerContext) async throws -> Void
    ) {
        register(method.name, allowedRoles: method.allowedRoles) { call in
            try await handler(
                MessageStream(next: call.receive),
                StreamWriter(writeFramed: call.sendFramed, credit: call.waitForWindow, end: call.end), call.context)
        }
    }

    /// Exactly one request message, or INTERNAL (rpc.md §3.2: a wrong message count is a
    /// protocol violation, not a bad argument).
    static func single<Request: WireMessage>(_ type: Request.Type, from call: ServerCall) async throws -> Request {
        guard let bytes = try await call.receive() else {
            throw RPCError(.internal, "\(call.context.method) needs one request message and got none")
        }
        guard try await call.receive() == nil else {
            throw RPCError(.internal, "\(call.context.method) takes one request message and got more")
        }
        return try decodeRequest(Request.self, bytes)
    }

    static func decodeRequest<Request: WireMessage>(_ type: Request.Type, _ bytes: ArraySlice<UInt8>) throws(RPCError) -> Request {
        do {
            return try Request(serializedBytes: bytes)
        } catch {
            // rpc.md §6.5: a request that does not decode is INTERNAL (malformed-message).
            throw RPCError(.internal, "malformed-message: the \(Request.self) request did not decode: \(error.message)")
        }
    }
}

extension RPCConnection {
    /// Opens a call with the deadline timer armed; the caller must end it with `closeCall`.
    func startCall(_ name: String, options: CallOptions, onlyMessage: [UInt8]? = nil) async throws -> (UInt32, TimerHandle?, Bool) {
        // The deadline starts now, so time spent queued for a free stream counts (rpc.md §9.1).
        let start = MonotonicTime.now()
        let deadline = options.timeout.map { start + $0 }
        let (id, sent) = try await openCall(
            CallHead(method: name, metadata: options.metadata), deadline: deadline, message: onlyMessage)
        let timer = options.timeout.map { limit in
            let end = deadline ?? start + limit
            let left = Int64(clamping: end.nanoseconds) - Int64(clamping: MonotonicTime.now().nanoseconds)
            return loop.schedule(after: .nanoseconds(max(0, left))) { [weak self] in
                self?.cancelStream(id, error: RPCError(.deadlineExceeded, "\(name) did not finish within \(limit)"))
            }
        }
        return (id, timer, sent)
    }

    func closeCall(_ id: UInt32, timer: TimerHandle?) {
        if let timer { loop.cancel(timer) }
        // A unary call resolved with its trailers is already forgotten: one look is enough.
        guard state.withLock({ $0.streams[id] != nil }) else { return }
        cancelStream(id)
        forgetClientStream(id)
    }

    public func unary<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, options: CallOptions = CallOptions()
    ) async throws -> Response {
        try await intercepted(method.name, options) { options in try await requeuedUnary(method, request, options: options) }
    }

    /// The server may refuse a call its count of running handlers cannot take yet, even from a
    /// client within the limit (rpc.md §11): such a call was not processed, so it is tried
    /// again on this connection a few times, briefly backing off, within its deadline.
    private func requeuedUnary<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, options: CallOptions
    ) async throws -> Response {
        let deadline = options.timeout.map { MonotonicTime.now() + $0 }
        var refusals = 0
        while true {
            var attempt = options
            if let deadline {
                let left = Int64(clamping: deadline.nanoseconds) - Int64(clamping: MonotonicTime.now().nanoseconds)
                attempt.timeout = .nanoseconds(max(1, left))
            }
            do {
                return try await plainUnary(method, request, options: attempt)
            } catch let error as RPCError where error == .refusedStream && refusals < 5 {
                refusals += 1
                try await loop.sleep(for: .milliseconds(1 << refusals))
            }
        }
    }

    private func plainUnary<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, options: CallOptions
    ) async throws -> Response {
        let requestBytes = request.serializedBytes()
        let (id, timer, sent) = try await startCall(method.name, options: options, onlyMessage: requestBytes)
        defer { closeCall(id, timer: timer) }
        if !sent { try await send(requestBytes, on: id, endStream: true) }
        // Resolved with the trailers: a failure after the response still fails the call.
        return try Self.decode(Response.self, try await unaryResponse(method.name, on: id))
    }

    public func serverStreaming<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, options: CallOptions = CallOptions(),
        _ body: (MessageStream<Response>) async throws -> Void
    ) async throws {
        try await intercepted(method.name, options) { options in
            let (id, timer, _) = try await startCall(method.name, options: options)
            defer { closeCall(id, timer: timer) }
            try await send(request.serializedBytes(), on: id, endStream: true)
            try await body(MessageStream(next: { try await self.receive(on: id) }))
        }
    }

    public func clientStreaming<Request, Response>(
        _ method: RPCMethod<Request, Response>, options: CallOptions = CallOptions(),
        _ body: (StreamWriter<Request>) async throws -> Void
    ) async throws -> Response {
        try await intercepted(method.name, options) { options in
            let (id, timer, _) = try await startCall(method.name, options: options)
            defer { closeCall(id, timer: timer) }
            try await body(StreamWriter(writeFramed: { try await self.sendHeadroomed($0, on: id) }))
            try await finishSending(on: id)
            guard let bytes = try await receive(on: id) else {
                throw RPCError(.internal, "\(method.name) ended without a response")
            }
            let response = try Self.decode(Response.self, bytes)
            try await expectTrailers(method.name, on: id)
            return response
        }
    }

    public func bidirectional<Request, Response, Result: Sendable>(
        _ method: RPCMethod<Request, Response>, options: CallOptions = CallOptions(),
        _ body: (StreamWriter<Request>, MessageStream<Response>) async throws -> Result
    ) async throws -> Result {
        try await intercepted(method.name, options) { options in
            let (id, timer, _) = try await startCall(method.name, options: options)
            defer { closeCall(id, timer: timer) }
            return try await body(
                StreamWriter(writeFramed: { try await self.sendHeadroomed($0, on: id) }),
                MessageStream(next: { try await self.receive(on: id) }))
        }
    }

    /// After the one response of a unary or client-streaming call only trailers may come; a
    /// second message is reset with PROTOCOL_ERROR and fails the call (rpc.md §3.2).
    private func expectTrailers(_ name: String, on id: UInt32) async throws {
        guard try await receive(on: id) != nil else { return }
        let error = RPCError(.internal, "\(name) sent more than one response message")
        resetStream(id, code: .protocolError, failure: error)
        throw error
    }

    static func decode<Response: WireMessage>(_ type: Response.Type, _ bytes: ArraySlice<UInt8>) throws -> Response {
        do {
            return try Response(serializedBytes: bytes)
        } catch {
            throw RPCError(.internal, "the \(Response.self) response did not decode: \(error.message)")
        }
    }
}
