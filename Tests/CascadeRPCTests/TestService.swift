import CascadeNet
import CascadeRPC
import CascadeWire
import Synchronization

/// A small message for tests: text and a number.
struct Note: WireMessage, Equatable {
    var text = ""
    var number: UInt64 = 0

    init(text: String = "", number: UInt64 = 0) {
        self.text = text
        self.number = number
    }

    init(from reader: inout MessageReader) throws(WireError) {
        while let field = try reader.next() {
            switch field.number {
            case 1: text = try field.string()
            case 2: number = try field.uint64()
            default: continue
            }
        }
    }

    func encode(to writer: inout CascadeWire.MessageWriter) {
        if !text.isEmpty { writer.writeString(field: 1, text) }
        if number != 0 { writer.writeVarint(field: 2, number) }
    }
}

enum TestMethods {
    static let echo = RPCMethod<Note, Note>("cascade.Test/Echo", allowedRoles: [.agent, .operator])
    static let count = RPCMethod<Note, Note>("cascade.Test/Count", allowedRoles: [.agent])
    static let sum = RPCMethod<Note, Note>("cascade.Test/Sum", allowedRoles: [.agent])
    static let chat = RPCMethod<Note, Note>("cascade.Test/Chat", allowedRoles: [.agent])
    static let stall = RPCMethod<Note, Note>("cascade.Test/Stall", allowedRoles: [.agent])
    static let fail = RPCMethod<Note, Note>("cascade.Test/Fail", allowedRoles: [.agent])
    static let gated = RPCMethod<Note, Note>("cascade.Test/Gated", allowedRoles: [.agent])
    static let blob = RPCMethod<Note, Note>("cascade.Test/Blob", allowedRoles: [.agent])
    static let deadline = RPCMethod<Note, Note>("cascade.Test/Deadline", allowedRoles: [.agent])
    static let adminOnly = RPCMethod<Note, Note>("cascade.Test/AdminOnly", allowedRoles: [.operator])
}

/// What the server saw, for assertions.
final class ServerLog: Sendable {
    let startedHandlers = Atomic<Int>(0)
    let cancelledHandlers = Atomic<Int>(0)
    let peers = Mutex<[String]>([])
    /// Opened by a test to let gated handlers finish.
    let gate = Gate()
    /// Never opened: handlers waiting on it run until they are cancelled.
    let never = Gate()
}

func makeRouter(log: ServerLog) -> RPCRouter {
    let router = RPCRouter()
    router.unary(TestMethods.echo) { request, context in
        log.peers.withLock { $0.append(context.peer.map { "\($0)" } ?? "none") }
        return Note(text: request.text, number: request.number + 1)
    }
    router.serverStreaming(TestMethods.count) { request, writer, _ in
        for index in 1...max(1, request.number) {
            try await writer.write(Note(text: request.text, number: index))
        }
    }
    router.clientStreaming(TestMethods.sum) { requests, _ in
        var total: UInt64 = 0
        var count: UInt64 = 0
        for try await note in requests {
            total += note.number
            count += 1
        }
        return Note(text: "\(count)", number: total)
    }
    router.bidirectional(TestMethods.chat) { requests, writer, _ in
        for try await note in requests {
            try await writer.write(Note(text: note.text.uppercased(), number: note.number))
        }
    }
    router.unary(TestMethods.stall) { _, _ in
        log.startedHandlers.add(1, ordering: .relaxed)
        do {
            try await log.never.wait()
        } catch {
            log.cancelledHandlers.add(1, ordering: .relaxed)
            throw error
        }
        return Note()
    }
    router.unary(TestMethods.fail) { request, _ in
        throw RPCError(.notFound, "no release \(request.text)")
    }
    router.unary(TestMethods.adminOnly) { _, _ in Note(text: "secret") }
    // Answers how many microseconds the server sees left before the caller's deadline.
    router.unary(TestMethods.deadline) { _, context in
        guard let deadline = context.deadline else { return Note(text: "none") }
        let left = deadline.nanoseconds > MonotonicTime.now().nanoseconds ? (deadline.nanoseconds - MonotonicTime.now().nanoseconds) / 1000 : 0
        return Note(text: "set", number: left)
    }
    // Finishes once the test opens the gate (drain tests).
    router.unary(TestMethods.gated) { request, _ in
        log.startedHandlers.add(1, ordering: .relaxed)
        try await log.gate.wait()
        return Note(text: "done", number: request.number)
    }
    // Streams `number` messages of 256 KiB (flow-control tests).
    router.serverStreaming(TestMethods.blob) { request, writer, _ in
        let chunk = Note(text: String(repeating: "x", count: 256 * 1024))
        for _ in 0..<request.number { try await writer.write(chunk) }
    }
    return router
}

/// A client and a server connection joined in memory, both running.
struct InMemoryPair {
    let client: RPCConnection
    let server: RPCConnection
    let log = ServerLog()

    init(
        clientRole: PeerIdentity.Role = .agent, settings: Settings = Settings(),
        clientInterceptors: [any ClientInterceptor] = [], serverInterceptors: [any ServerInterceptor] = []
    ) throws {
        let (a, b) = InMemoryByteStream.pair()
        let router = makeRouter(log: log)
        for interceptor in serverInterceptors { router.intercept(interceptor) }
        server = RPCConnection(
            transport: b, side: .server, peer: try PeerIdentity(role: clientRole, id: "member-1"),
            settings: settings, router: router)
        client = RPCConnection(
            transport: a, side: .client, peer: try PeerIdentity(role: .agent, id: "leader-1"), settings: settings,
            interceptors: clientInterceptors)
        let server = self.server
        let client = self.client
        Task { await server.run() }
        Task { await client.run() }
    }
}

/// A one-way gate: `wait()` suspends until `open()` or until the waiting task is cancelled
/// (then it throws CancellationError). Lets test handlers block without timers or polling.
final class Gate: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.isOpen = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> (any Error)?? in
                    if state.isOpen { return .some(nil) }
                    if Task.isCancelled { return .some(CancellationError()) }
                    state.waiters[id] = continuation
                    return .none
                }
                switch resumeNow {
                case .some(nil): continuation.resume()
                case .some(let error?): continuation.resume(throwing: error)
                case .none: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
