import CascadeNet
import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Synchronization
import Testing

/// A request whose field 1 is a varint, where Note expects text: it does not decode as a Note.
struct NotANote: WireMessage {
    init() {}
    init(from reader: inout MessageReader) throws(WireError) {
        while try reader.next() != nil {}
    }
    func encode(to writer: inout CascadeWire.MessageWriter) {
        writer.writeVarint(field: 1, 7)
    }
}

enum ImmediateMethods {
    static let echo = RPCMethod<Note, Note>("cascade.Immediate/Echo", allowedRoles: [.agent])
    static let garbled = RPCMethod<NotANote, Note>("cascade.Immediate/Echo", allowedRoles: [.agent])
    static let fail = RPCMethod<Note, Note>("cascade.Immediate/Fail", allowedRoles: [.agent])
    static let big = RPCMethod<Note, Note>("cascade.Immediate/Big", allowedRoles: [.agent])
    static let open = RPCMethod<Note, Note>("cascade.Immediate/Echo", allowedRoles: [.agent])
}

final class CallCounter: Sendable {
    let value = Atomic<Int>(0)
    func add() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// Counts the calls a server interceptor sees.
final class InterceptCount: ServerInterceptor {
    let count = Atomic<Int>(0)
    func intercept(_ context: ServerContext, next: () async throws -> Void) async throws {
        count.add(1, ordering: .relaxed)
        try await next()
    }
}

/// A client and server joined in memory, the server answering with immediate handlers.
struct ImmediatePair {
    let client: RPCConnection
    let server: RPCConnection
    /// How many times the echo handler ran.
    let calls = CallCounter()

    init(interceptor: InterceptCount? = nil) throws {
        let router = RPCRouter()
        if let interceptor { router.intercept(interceptor) }
        let calls = self.calls
        router.unaryImmediate(ImmediateMethods.echo) { request, context in
            calls.add()
            return Note(text: "\(request.text) from \(context.peer.map { "\($0)" } ?? "nobody")", number: request.number + 1)
        }
        router.unaryImmediate(ImmediateMethods.fail) { request, _ in
            throw RPCError(.failedPrecondition, "cannot do \(request.text)")
        }
        // Larger than the default stream window: the response cannot go out in one piece.
        router.unaryImmediate(ImmediateMethods.big) { request, _ in
            Note(text: String(repeating: "z", count: Int(request.number)))
        }
        let (a, b) = InMemoryByteStream.pair()
        server = RPCConnection(transport: b, side: .server, peer: try PeerIdentity(role: .agent, id: "m-1"), router: router)
        client = RPCConnection(transport: a, side: .client, peer: try PeerIdentity(role: .agent, id: "l-1"))
        let server = self.server
        let client = self.client
        Task { await server.run() }
        Task { await client.run() }
    }
}

@Suite("Immediate unary handlers")
struct ImmediateHandlerTests {
    @Test("an immediate handler answers, sees the caller, and its errors reach the caller as statuses")
    func answersAndFails() async throws {
        let pair = try ImmediatePair()
        #expect(try await pair.client.unary(ImmediateMethods.echo, Note(text: "hi", number: 1)) == Note(text: "hi from agent m-1", number: 2))
        let failed = await #expect(throws: RPCError.self) { _ = try await pair.client.unary(ImmediateMethods.fail, Note(text: "that")) }
        #expect(failed?.code == .failedPrecondition)
        #expect(failed?.message == "cannot do that")
        let garbled = await #expect(throws: RPCError.self) { _ = try await pair.client.unary(ImmediateMethods.garbled, NotANote()) }
        #expect(garbled?.code == .internal)
        #expect(garbled?.message.contains("malformed-message") == true)
        #expect(pair.calls.count == 1)
        // Nothing is left running or held once the calls are answered.
        #expect(pair.server.activeHandlerCount == 0)
    }

    @Test("a response larger than the flow-control windows is still delivered whole")
    func largeResponse() async throws {
        let pair = try ImmediatePair()
        let size = 3 * 1024 * 1024
        let response = try await pair.client.unary(ImmediateMethods.big, Note(number: UInt64(size)))
        #expect(response.text.utf8.count == size)
        #expect(response.text.utf8.allSatisfy { $0 == UInt8(ascii: "z") })
        _ = try await waitUntil(within: .seconds(10), "the sending task to finish") {
            pair.server.activeHandlerCount == 0 ? true : nil
        }
    }

    @Test("a call reset before its request is complete frees its handler slot and runs nothing")
    func resetBeforeRequest() async throws {
        let pair = try ImmediatePair()
        let gate = Gate()
        // Opens the call (HEADERS, no END_STREAM) and never sends the request.
        let call = Task {
            try await pair.client.bidirectional(ImmediateMethods.open) { _, _ in try await gate.wait() }
        }
        _ = try await waitUntil(within: .seconds(10), "the server to hold a slot for the call") {
            pair.server.activeHandlerCount == 1 ? true : nil
        }
        call.cancel()
        _ = try? await call.value
        _ = try await waitUntil(within: .seconds(10), "the slot to be freed by the RESET") {
            pair.server.activeHandlerCount == 0 ? true : nil
        }
        #expect(pair.calls.count == 0)
        // The connection still serves.
        #expect(try await pair.client.unary(ImmediateMethods.echo, Note(text: "after")).number == 1)
    }

    @Test("calls with a deadline, or through interceptors, take the task path and still answer")
    func taskPath() async throws {
        let interceptor = InterceptCount()
        let pair = try ImmediatePair(interceptor: interceptor)
        let timed = try await pair.client.unary(
            ImmediateMethods.echo, Note(text: "timed", number: 4), options: CallOptions(timeout: .seconds(30)))
        #expect(timed == Note(text: "timed from agent m-1", number: 5))
        #expect(interceptor.count.load(ordering: .relaxed) == 1)
        let failed = await #expect(throws: RPCError.self) { _ = try await pair.client.unary(ImmediateMethods.fail, Note(text: "x")) }
        #expect(failed?.code == .failedPrecondition)
        #expect(interceptor.count.load(ordering: .relaxed) == 2)
    }
}

@Suite("RPC over loop-driven TLS")
struct LoopDrivenCallTests {
    /// A started RPCServer on 127.0.0.1 and an RPCClient for it (an agent certificate).
    func serve(_ router: RPCRouter, pki: TestPKI) throws -> (RPCServer, RPCClient) {
        let server = try RPCServer(
            bindingTo: SocketAddress(ip: "127.0.0.1", port: 0),
            tls: TLSContext(configuration: pki.configuration(uri: "cascade://coordinator/main"), side: .server), router: router)
        server.start()
        let client = RPCClient(
            target: server.localAddress,
            tls: try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a-1"), side: .client))
        return (server, client)
    }

    @Test("a 24 MiB upload in 64 KiB messages arrives whole, and its answer comes well before any keepalive")
    func burstThenQuiet() async throws {
        let pki = try TestPKI()
        let router = RPCRouter()
        router.clientStreaming(TestMethods.sum) { requests, _ in
            var bytes: UInt64 = 0
            var count: UInt64 = 0
            for try await note in requests {
                bytes += UInt64(note.text.utf8.count)
                count += 1
            }
            return Note(text: "\(count)", number: bytes)
        }
        let (server, client) = try serve(router, pki: pki)
        let chunk = String(repeating: "q", count: 64 * 1024)
        // Well under the 30 s keepalive, which would be the first thing to wake a stalled reader
        // (the deterministic case is LoopReaderTests).
        let reply = try await client.withConnection { connection in
            try await connection.clientStreaming(TestMethods.sum, options: CallOptions(timeout: .seconds(15))) { writer in
                for _ in 0..<384 { try await writer.write(Note(text: chunk)) }
            }
        }
        #expect(reply == Note(text: "384", number: 384 * 64 * 1024))
        client.close()
        await server.shutdown(drainTimeout: .seconds(5))
    }

    @Test("messages of hundreds of KiB cross a TLS connection intact both ways (frames assembled in place)")
    func largeMessagesOverTLS() async throws {
        let pki = try TestPKI()
        let router = RPCRouter()
        router.unary(TestMethods.echo) { request, _ in Note(text: String(request.text.reversed()), number: request.number) }
        let (server, client) = try serve(router, pki: pki)
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        for (round, size) in [70_000, 300_000, 1_000_000].enumerated() {
            let text = String((0..<size).map { letters[($0 &* 7 &+ round) % letters.count] })
            let reply = try await client.unary(TestMethods.echo, Note(text: text, number: UInt64(size)))
            #expect(reply.number == UInt64(size))
            #expect(reply.text == String(text.reversed()))
        }
        client.close()
        await server.shutdown(drainTimeout: .seconds(5))
    }

    @Test("64 callers at once on one TLS connection through RPCServer and RPCClient all get their own answers")
    func concurrentOverTLS() async throws {
        let pki = try TestPKI()
        let router = RPCRouter()
        router.unaryImmediate(ImmediateMethods.echo) { request, _ in Note(text: request.text, number: request.number * 2) }
        router.unary(TestMethods.echo) { request, _ in Note(text: request.text, number: request.number + 1) }
        let (server, client) = try serve(router, pki: pki)
        let results = try await withThrowingTaskGroup(of: (UInt64, UInt64, UInt64).self) { group in
            for index in 0..<64 {
                group.addTask {
                    var immediate: UInt64 = 0
                    var ordinary: UInt64 = 0
                    for round in 0..<20 {
                        let value = UInt64(index * 100 + round)
                        immediate += try await client.unary(ImmediateMethods.echo, Note(number: value)).number - 2 * value
                        ordinary += try await client.unary(TestMethods.echo, Note(number: value)).number - value - 1
                    }
                    return (UInt64(index), immediate, ordinary)
                }
            }
            var all: [(UInt64, UInt64, UInt64)] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 64)
        // Every answer matched its own request (a crossed answer would leave a difference).
        #expect(results.allSatisfy { $0.1 == 0 && $0.2 == 0 })
        client.close()
        await server.shutdown(drainTimeout: .seconds(5))
    }
}
