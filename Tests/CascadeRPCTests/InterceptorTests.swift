import CascadeNet
import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Synchronization
import Testing

/// Lines written by interceptors, in the order they ran.
final class Recorder: Sendable {
    let lines = Mutex<[String]>([])
    func add(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

/// Logs before and after the call, with the outcome's status code.
struct LoggingClientInterceptor: ClientInterceptor {
    let name: String
    let recorder: Recorder
    func intercept<T: Sendable>(_ call: ClientCallInfo, options: CallOptions, next: (CallOptions) async throws -> T) async throws -> T {
        recorder.add("\(name)> \(call.method) to \(call.peer.map { "\($0)" } ?? "?")")
        do {
            let result = try await next(options)
            recorder.add("\(name)< OK")
            return result
        } catch let error as RPCError {
            recorder.add("\(name)< \(error.code)")
            throw error
        }
    }
}

/// Adds a metadata entry, as a tracing interceptor would.
struct MetadataClientInterceptor: ClientInterceptor {
    func intercept<T: Sendable>(_ call: ClientCallInfo, options: CallOptions, next: (CallOptions) async throws -> T) async throws -> T {
        var options = options
        options.metadata.append(MetadataEntry("trace-id", "t-1"))
        return try await next(options)
    }
}

struct LoggingServerInterceptor: ServerInterceptor {
    let name: String
    let recorder: Recorder
    func intercept(_ context: ServerContext, next: () async throws -> Void) async throws {
        let trace = context.metadata.first { $0.key == "trace-id" }.map { String(decoding: $0.value, as: UTF8.self) } ?? "-"
        recorder.add("\(name)> \(context.method) from \(context.peer.map { "\($0)" } ?? "?") trace=\(trace)")
        do {
            try await next()
            recorder.add("\(name)< OK")
        } catch let error as RPCError {
            recorder.add("\(name)< \(error.code)")
            throw error
        }
    }
}

/// Refuses one method to agents, whatever the method's own role list says.
struct DenyingServerInterceptor: ServerInterceptor {
    func intercept(_ context: ServerContext, next: () async throws -> Void) async throws {
        if context.method == "cascade.Test/Echo", context.peer?.role == .agent {
            throw RPCError(.permissionDenied, "agents may not echo here")
        }
        try await next()
    }
}

@Suite("RPC interceptors")
struct InterceptorTests {
    @Test("client and server interceptors wrap every call outermost-first and see metadata and outcomes")
    func wrapping() async throws {
        let client = Recorder()
        let server = Recorder()
        let pair = try InMemoryPair(
            clientInterceptors: [LoggingClientInterceptor(name: "outer", recorder: client), MetadataClientInterceptor(),
                                 LoggingClientInterceptor(name: "inner", recorder: client)],
            serverInterceptors: [LoggingServerInterceptor(name: "s1", recorder: server),
                                 LoggingServerInterceptor(name: "s2", recorder: server)])
        #expect(try await pair.client.unary(TestMethods.echo, Note(number: 1)).number == 2)
        await #expect(throws: RPCError.self) { _ = try await pair.client.unary(TestMethods.fail, Note()) }
        var numbers: [UInt64] = []
        try await pair.client.serverStreaming(TestMethods.count, Note(number: 3)) { responses in
            for try await note in responses { numbers.append(note.number) }
        }
        #expect(numbers == [1, 2, 3])
        #expect(client.all == [
            "outer> cascade.Test/Echo to agent leader-1", "inner> cascade.Test/Echo to agent leader-1", "inner< OK", "outer< OK",
            "outer> cascade.Test/Fail to agent leader-1", "inner> cascade.Test/Fail to agent leader-1",
            "inner< NOT_FOUND", "outer< NOT_FOUND",
            "outer> cascade.Test/Count to agent leader-1", "inner> cascade.Test/Count to agent leader-1", "inner< OK", "outer< OK",
        ])
        // The server's lines for one call are written before its trailers reach the client.
        #expect(server.all == [
            "s1> cascade.Test/Echo from agent member-1 trace=t-1", "s2> cascade.Test/Echo from agent member-1 trace=t-1", "s2< OK", "s1< OK",
            "s1> cascade.Test/Fail from agent member-1 trace=t-1", "s2> cascade.Test/Fail from agent member-1 trace=t-1",
            "s2< NOT_FOUND", "s1< NOT_FOUND",
            "s1> cascade.Test/Count from agent member-1 trace=t-1", "s2> cascade.Test/Count from agent member-1 trace=t-1", "s2< OK", "s1< OK",
        ])
    }

    @Test("a server interceptor can refuse a call with PERMISSION_DENIED before its handler runs")
    func authorization() async throws {
        let pair = try InMemoryPair(serverInterceptors: [DenyingServerInterceptor()])
        let error = await #expect(throws: RPCError.self) { _ = try await pair.client.unary(TestMethods.echo, Note(number: 1)) }
        #expect(error?.code == .permissionDenied)
        #expect(error?.message == "agents may not echo here")
        #expect(pair.log.peers.withLock { $0 }.isEmpty)
        // Other methods still run.
        let sum = try await pair.client.clientStreaming(TestMethods.sum) { writer in
            try await writer.write(Note(number: 2))
            try await writer.write(Note(number: 3))
        }
        #expect(sum.number == 5)
    }
}
