import CascadeNet
import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Testing

@Suite("RPC call shapes (in memory)")
struct CallShapeTests {
    @Test("a unary call returns the handler's response and the server sees the caller's identity")
    func unary() async throws {
        let pair = try InMemoryPair()
        let response = try await pair.client.unary(TestMethods.echo, Note(text: "hello", number: 41))
        #expect(response == Note(text: "hello", number: 42))
        #expect(pair.log.peers.withLock { $0 } == ["agent member-1"])
    }

    @Test("a server stream delivers every message in order, then ends")
    func serverStreaming() async throws {
        let pair = try InMemoryPair()
        var numbers: [UInt64] = []
        try await pair.client.serverStreaming(TestMethods.count, Note(text: "n", number: 1000)) { responses in
            for try await note in responses { numbers.append(note.number) }
        }
        #expect(numbers == Array(1...1000))
    }

    @Test("a client stream is summed by the server")
    func clientStreaming() async throws {
        let pair = try InMemoryPair()
        let result = try await pair.client.clientStreaming(TestMethods.sum) { writer in
            for value in 1...500 { try await writer.write(Note(number: UInt64(value))) }
        }
        #expect(result == Note(text: "500", number: 125_250))
    }

    @Test("a bidirectional call answers each message as it arrives")
    func bidirectional() async throws {
        let pair = try InMemoryPair()
        let replies = try await pair.client.bidirectional(TestMethods.chat) { writer, responses in
            var replies: [String] = []
            var iterator = responses.makeAsyncIterator()
            for word in ["alpha", "beta", "gamma"] {
                try await writer.write(Note(text: word))
                if let reply = try await iterator.next() { replies.append(reply.text) }
            }
            return replies
        }
        #expect(replies == ["ALPHA", "BETA", "GAMMA"])
    }

    @Test("a 3 MiB message crosses several frames and windows intact")
    func largeMessage() async throws {
        let pair = try InMemoryPair()
        let text = String(repeating: "cascade-", count: 3 * 1024 * 1024 / 8)
        let response = try await pair.client.unary(TestMethods.echo, Note(text: text, number: 1))
        #expect(response.text == text)
    }

    @Test("1,000 concurrent unary calls on one connection all succeed")
    func concurrency() async throws {
        let pair = try InMemoryPair()
        let results = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for index in 0..<1000 {
                group.addTask { try await pair.client.unary(TestMethods.echo, Note(number: UInt64(index))).number }
            }
            var all: [UInt64] = []
            for try await value in group { all.append(value) }
            return all.sorted()
        }
        #expect(results == Array(1...1000))
    }
}

@Suite("RPC errors, deadlines and cancellation (in memory)")
struct CallErrorTests {
    @Test("a handler's typed error reaches the caller with its code and message")
    func handlerError() async throws {
        let pair = try InMemoryPair()
        let error = await #expect(throws: RPCError.self) { _ = try await pair.client.unary(TestMethods.fail, Note(text: "9.9")) }
        #expect(error?.code == .notFound)
        #expect(error?.message == "no release 9.9")
    }

    @Test("an unknown method gives UNIMPLEMENTED")
    func unknownMethod() async throws {
        let pair = try InMemoryPair()
        let missing = RPCMethod<Note, Note>("cascade.Test/Nope", allowedRoles: [.agent])
        let error = await #expect(throws: RPCError.self) { _ = try await pair.client.unary(missing, Note()) }
        #expect(error?.code == .unimplemented)
    }

    @Test("a method called with the wrong role gets PERMISSION_DENIED")
    func wrongRole() async throws {
        let pair = try InMemoryPair(clientRole: .agent)
        let error = await #expect(throws: RPCError.self) { _ = try await pair.client.unary(TestMethods.adminOnly, Note()) }
        #expect(error?.code == .permissionDenied)
        #expect(error?.message.contains("agent member-1 may not call cascade.Test/AdminOnly") == true)
    }

    @Test("a call past its deadline fails DEADLINE_EXCEEDED and the server's handler is cancelled")
    func deadline() async throws {
        let pair = try InMemoryPair()
        let error = await #expect(throws: RPCError.self) {
            _ = try await pair.client.unary(TestMethods.stall, Note(), options: CallOptions(timeout: .milliseconds(300)))
        }
        #expect(error?.code == .deadlineExceeded)
        // No handler outlives the deadline: every one that started was cancelled (on a loaded
        // machine the deadline may pass before the handler even starts).
        _ = try await waitUntil(within: .seconds(10), "the server handler to finish") {
            pair.server.activeHandlerCount == 0 ? true : nil
        }
        #expect(pair.log.cancelledHandlers.load(ordering: .relaxed) == pair.log.startedHandlers.load(ordering: .relaxed))
    }

    @Test("cancelling the calling task cancels the call on the wire and the server's handler")
    func cancellation() async throws {
        let pair = try InMemoryPair()
        let call = Task { try await pair.client.unary(TestMethods.stall, Note()) }
        // Wait until the server is really running the handler before cancelling.
        _ = try await waitUntil(within: .seconds(10), "the call to reach the server") {
            pair.server.activeHandlerCount == 1 ? true : nil
        }
        call.cancel()
        let error = await #expect(throws: RPCError.self) { _ = try await call.value }
        #expect(error?.code == .cancelled)
        _ = try await waitUntil(within: .seconds(10), "the server handler to be cancelled") {
            pair.log.cancelledHandlers.load(ordering: .relaxed) == 1 ? true : nil
        }
        // The connection is still good for the next call.
        #expect(try await pair.client.unary(TestMethods.echo, Note(number: 1)).number == 2)
    }
}

@Suite("RPC call queueing")
struct CallQueueTests {
    @Test("a call queued behind the peer's stream limit can be cancelled while it waits", .timeLimit(.minutes(1)))
    func cancelWhileQueued() async throws {
        var settings = Settings.rpcDefaults
        settings.maxConcurrentStreams = 1
        let pair = try InMemoryPair(settings: settings)
        // Make sure the client knows the limit before filling it.
        #expect(try await pair.client.unary(TestMethods.echo, Note(number: 1)).number == 2)
        let holder = Task { try await pair.client.unary(TestMethods.stall, Note()) }
        _ = try await waitUntil(within: .seconds(10), "the first call to hold the only stream") {
            pair.server.activeHandlerCount == 1 ? true : nil
        }
        let queued = Task { try await pair.client.unary(TestMethods.echo, Note(number: 5)) }
        queued.cancel()
        let error = await #expect(throws: RPCError.self) { _ = try await queued.value }
        #expect(error?.code == .cancelled)
        holder.cancel()
        _ = try? await holder.value
        // The server counts a cancelled handler until it has ended (rpc.md §11).
        _ = try await waitUntil(within: .seconds(10), "the cancelled handler to end") {
            pair.server.activeHandlerCount == 0 ? true : nil
        }
        // The slot comes back: a new call goes through.
        #expect(try await pair.client.unary(TestMethods.echo, Note(number: 7)).number == 8)
    }
}
