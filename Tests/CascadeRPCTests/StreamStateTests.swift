import CascadeNet
import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Synchronization
import Testing

/// rpc.md §4.4: what each side does with frames for idle, ended and closed streams, and §3.2's
/// one-response rule for unary calls.
@Suite("RPC frames by stream state")
struct StreamStateTests {
    @Test("a frame naming a stream the client never opened is a protocol error", arguments: [
        Frame.windowUpdate(streamID: 9, increment: 4096),
        Frame.reset(streamID: 9, code: .cancel),
        Frame.data(streamID: 9, [0, 0, 0, 0]),
    ])
    func idleStream(frame: Frame) async throws {
        let peer = try RawPeer()
        try await peer.hello()
        try await peer.send([frame])
        let goaway = try #require(try await peer.goaway())
        #expect(goaway.code == .protocolError)
        #expect(goaway.reason.contains("stream 9, which was never opened"))
    }

    @Test("DATA after the client ended its side resets the stream with STREAM_CLOSED and cancels the handler")
    func dataAfterEnd() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        try await peer.send([
            .headers(streamID: 1, callHead("cascade.Test/Stall")),
            .data(streamID: 1, [0, 0, 0, 0], endStream: true),
            .data(streamID: 1, [0, 0, 0, 0]),
            // The connection lives on: a later call still gets its answer.
            .headers(streamID: 3, callHead("cascade.Test/Echo")),
            .data(streamID: 3, [0, 0, 0, 0], endStream: true),
        ])
        let resets = Mutex<[ErrorCode]>([])
        let trailers = try await peer.frame { frame in
            if frame.type == .reset, frame.streamID == 1, case .reset(let code)? = try? FramePayload(frame) {
                resets.withLock { $0.append(code) }
            }
            return frame.type == .trailers && frame.streamID == 3
        }
        #expect(trailers != nil)
        #expect(resets.withLock { $0 } == [.streamClosed])
        _ = try await waitUntil(within: .seconds(10), "the stalled handler to be cancelled") {
            peer.server.activeHandlerCount == 0 ? true : nil
        }
    }

    @Test("PING ACKs that match no PING count toward the PING flood limit")
    func unmatchedPingAcks() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        try await peer.send((0..<60).map { Frame.ping(UInt64(1000 + $0), ack: true) })
        let goaway = try #require(try await peer.goaway())
        #expect(goaway.code == .enhanceYourCalm)
        #expect(goaway.reason.contains("PING"))
    }

    @Test("SETTINGS ACKs beyond the one that matches count toward the SETTINGS flood limit")
    func unmatchedSettingsAcks() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        try await peer.send((0..<25).map { _ in Frame.settingsAck })
        let goaway = try #require(try await peer.goaway())
        #expect(goaway.code == .enhanceYourCalm)
        #expect(goaway.reason.contains("SETTINGS"))
    }

    @Test("a second response on a unary call fails it INTERNAL and the client resets the stream with PROTOCOL_ERROR")
    func secondResponse() async throws {
        let server = RawServer()
        let call = Task { try await server.client.unary(TestMethods.echo, Note(text: "x")) }
        try await server.awaitRequest(on: 1)
        try await server.reply([
            .headers(streamID: 1, ResponseHead().serializedBytes()),
            .data(streamID: 1, [0, 0, 0, 0]),
            .data(streamID: 1, [0, 0, 0, 0]),
        ])
        let error = await #expect(throws: RPCError.self) { _ = try await call.value }
        #expect(error?.code == .internal)
        #expect(error?.message.contains("more than one response") == true)
        let reset = try await server.frame { $0.type == .reset && $0.streamID == 1 }
        guard case .reset(let code) = try FramePayload(reset) else { Issue.record("not a RESET"); return }
        #expect(code == .protocolError)
    }

    @Test("a unary call the server refuses with REFUSED_STREAM is tried again on the same connection (rpc.md §11)")
    func refusedIsRequeued() async throws {
        let server = RawServer()
        let call = Task { try await server.client.unary(TestMethods.echo, Note(text: "x")) }
        try await server.awaitRequest(on: 1)
        try await server.reply([.reset(streamID: 1, code: .refusedStream)])
        try await server.awaitRequest(on: 3)
        let body = Note(number: 7).serializedBytes()
        try await server.send([
            .headers(streamID: 3, ResponseHead().serializedBytes()),
            .data(streamID: 3, [0, 0, 0, UInt8(body.count)] + body),
            .trailers(streamID: 3, CallTrailers().serializedBytes()),
        ])
        #expect(try await call.value == Note(number: 7))
    }

    @Test("time spent waiting for a free stream counts against the call's deadline", .timeLimit(.minutes(1)))
    func deadlineWhileQueued() async throws {
        var settings = Settings.rpcDefaults
        settings.maxConcurrentStreams = 1
        let pair = try InMemoryPair(settings: settings)
        #expect(try await pair.client.unary(TestMethods.echo, Note(number: 1)).number == 2)
        let holder = Task { try await pair.client.unary(TestMethods.stall, Note()) }
        _ = try await waitUntil(within: .seconds(10), "the first call to hold the only stream") {
            pair.server.activeHandlerCount == 1 ? true : nil
        }
        let error = await #expect(throws: RPCError.self) {
            _ = try await pair.client.unary(TestMethods.echo, Note(number: 5), options: CallOptions(timeout: .milliseconds(100)))
        }
        #expect(error?.code == .deadlineExceeded)
        #expect(error?.message.contains("waiting for a free stream") == true)
        holder.cancel()
        _ = try? await holder.value
        // The server counts a cancelled handler until it has ended (rpc.md §11).
        _ = try await waitUntil(within: .seconds(10), "the cancelled handler to end") {
            pair.server.activeHandlerCount == 0 ? true : nil
        }
        #expect(try await pair.client.unary(TestMethods.echo, Note(number: 7)).number == 8)
    }
}
