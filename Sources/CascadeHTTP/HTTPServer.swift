public import CascadeNet
import Synchronization

/// A small HTTP/1.1 server for read-only views (`/metrics`, the status page): GET only, one
/// request per connection (`Connection: close`), bounded request heads, a deadline for reading
/// the request and one for writing the answer, a cap on connections at once.
///
/// Why our own, and why on CascadeNet: the programs need three GET endpoints and nothing of the
/// rest of HTTP, and the project takes no third-party packages. CascadeNet's epoll loops,
/// non-blocking sockets and `withTimeout` are what the RPC server already runs on, so a slow
/// or silent client costs a parked task and a descriptor until its deadline — never a thread —
/// and a scrape shares the loops instead of adding threads of its own. Plain TCP: the
/// listener is meant for loopback (`HTTPListenAddress`); nothing it serves changes anything.
public final class HTTPServer: Sendable {
    public struct Limits: Sendable {
        /// The request line and headers together; a longer head is answered 431.
        public var maxRequestBytes: Int
        /// From accept until the request head has arrived; a slower client gets 408.
        public var readTimeout: Duration
        /// For writing the answer to a client that does not read it.
        public var writeTimeout: Duration
        /// Connections served at once; more are answered 503 at once.
        public var maxConnections: Int

        public init(maxRequestBytes: Int = 8192, readTimeout: Duration = .seconds(5), writeTimeout: Duration = .seconds(10), maxConnections: Int = 64) {
            self.maxRequestBytes = maxRequestBytes
            self.readTimeout = readTimeout
            self.writeTimeout = writeTimeout
            self.maxConnections = maxConnections
        }
    }

    public typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse

    public let localAddress: SocketAddress
    public let limits: Limits
    private let listener: TCPListener
    private let routes: [String: Handler]
    private let acceptTask = Mutex<Task<Void, Never>?>(nil)
    private let connections = Mutex<(next: Int, open: [Int: Socket])>((0, [:]))
    private let statuses = Mutex<[Int: UInt64]>([:])

    /// Binds at once (so a port in use fails here); serves from `start()`. `routes` maps exact
    /// paths (no query) to handlers.
    public init(
        bindingTo address: SocketAddress, routes: [String: Handler], limits: Limits = Limits(), group: EventLoopGroup = .shared
    ) throws(NetError) {
        listener = try TCPListener(bindingTo: address, group: group, backlog: 128)
        localAddress = listener.localAddress
        self.routes = routes
        self.limits = limits
    }

    public func start() {
        let task = Task { await self.acceptLoop() }
        acceptTask.withLock { $0 = task }
    }

    /// Stops accepting, closes the connections being served, and returns once they are gone.
    public func shutdown() async {
        let task = acceptTask.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        task?.cancel()
        listener.close()
        await task?.value
        for socket in connections.withLock({ Array($0.open.values) }) { socket.close() }
        let loop = EventLoopGroup.shared.next()
        let deadline = MonotonicTime.now() + .seconds(2)
        while connections.withLock({ !$0.open.isEmpty }) && MonotonicTime.now() < deadline {
            try? await loop.sleep(for: .milliseconds(5))
        }
    }

    /// Responses sent so far, by status code.
    public var responseCounts: [Int: UInt64] { statuses.withLock { $0 } }

    /// Connections being served now.
    public var openConnections: Int { connections.withLock { $0.open.count } }

    private func acceptLoop() async {
        var backoff = Duration.milliseconds(10)
        while !Task.isCancelled {
            let socket: Socket
            do {
                socket = try await listener.accept()
                backoff = .milliseconds(10)
            } catch {
                if Task.isCancelled { return }
                // Out of descriptors or memory: wait and retry rather than spin or stop.
                try? await EventLoopGroup.shared.next().sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
                continue
            }
            Task { await self.serve(socket) }
        }
    }

    private func serve(_ socket: Socket) async {
        let slot = connections.withLock { state -> Int? in
            guard state.open.count < limits.maxConnections else { return nil }
            state.next += 1
            state.open[state.next] = socket
            return state.next
        }
        defer {
            if let slot { _ = connections.withLock { $0.open.removeValue(forKey: slot) } }
            socket.close()
        }
        let response: HTTPResponse
        if slot == nil {
            response = .text(503, "too many connections at once; try again")
        } else {
            let limit = limits.maxRequestBytes
            do {
                let request = try await withTimeout(limits.readTimeout, on: socket.loop, what: "reading an HTTP request") {
                    try await Self.readRequest(from: socket, maxBytes: limit)
                }
                response = await answer(request)
            } catch let failure as RequestHeadParser.Failure {
                switch failure {
                case .tooLarge: response = .text(431, "the request head is larger than \(limit) bytes")
                case .malformed(let why): response = .text(400, why)
                case .unsupportedVersion(let version): response = .text(505, "\(version) is not served; use HTTP/1.1")
                }
            } catch let error as NetError where error.code == .timedOut {
                response = .text(408, "the request did not arrive within \(limits.readTimeout)")
            } catch {
                return  // the client went away before its request was complete
            }
        }
        statuses.withLock { $0[response.status, default: 0] += 1 }
        let bytes = response.serialized()
        do {
            // A connection past the cap holds no slot, so it gets a second to take its 503.
            try await withTimeout(slot == nil ? .seconds(1) : limits.writeTimeout, on: socket.loop, what: "writing an HTTP response") {
                try await socket.write(bytes)
            }
        } catch {
            return
        }
        guard slot != nil else { return }
        // A lingering close: what the client sent beyond the head we read (a body, an oversized
        // head) is read and dropped for a moment, so closing does not reset the connection
        // before the client has read the answer.
        socket.shutdownWrite()
        _ = try? await withTimeout(.seconds(1), on: socket.loop, what: "closing an HTTP connection") {
            var drained = 0
            while drained < 1 << 16 {
                let chunk = try await socket.read(maxLength: 4096)
                if chunk.isEmpty { break }
                drained += chunk.count
            }
        }
    }

    private func answer(_ request: HTTPRequest) async -> HTTPResponse {
        guard request.method == "GET" else {
            return .text(405, "only GET is served here", headers: [("Allow", "GET")])
        }
        guard request.target.hasPrefix("/") else { return .text(400, "the request target must be a path") }
        guard let handler = routes[request.path] else {
            return .text(404, "nothing at \(request.path); this server has \(routes.keys.sorted().joined(separator: ", "))")
        }
        return await handler(request)
    }

    /// Reads until the blank line that ends the head; the request line must be well formed.
    static func readRequest(from socket: Socket, maxBytes: Int) async throws -> HTTPRequest {
        var parser = RequestHeadParser(maxBytes: maxBytes)
        while true {
            let bytes = try await socket.read(maxLength: 4096)
            guard !bytes.isEmpty else { throw NetError(.closed, "the client closed the connection before its request was complete") }
            if let head = try parser.feed(bytes) {
                let (method, target, version) = try RequestHeadParser.requestLine(head.line)
                let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
                return HTTPRequest(
                    method: method, target: target, path: path, version: version, headers: head.headers, remote: socket.remoteAddress)
            }
        }
    }
}

/// Where an HTTP view listens. `PORT` or `:PORT` means loopback (127.0.0.1); any other
/// address — a non-loopback one or a wildcard — must be written out (`10.0.0.5:9400`,
/// `0.0.0.0:9400`), so the views are never reachable from the network by accident.
public enum HTTPListenAddress {
    public static func parse(_ text: String) throws(NetError) -> SocketAddress {
        let trimmed = text.hasPrefix(":") ? String(text.dropFirst()) : text
        if !trimmed.isEmpty, trimmed.allSatisfy(\.isASCII), trimmed.allSatisfy(\.isNumber) {
            guard let port = UInt16(trimmed) else {
                throw NetError(.invalidAddress, "\"\(text)\" is not a port number (0-65535)")
            }
            return try SocketAddress(ip: "127.0.0.1", port: port)
        }
        return try SocketAddress(parsing: text)
    }

    /// 127.0.0.0/8 or ::1.
    public static func isLoopback(_ address: SocketAddress) -> Bool {
        if address.isIPv6 { return address.ipBytes == Array(repeating: 0, count: 15) + [1] }
        return address.ipBytes.first == 127
    }
}
