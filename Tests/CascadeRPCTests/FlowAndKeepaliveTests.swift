import CascadeNet
import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Testing

@Suite("RPC flow control and keepalive")
struct FlowAndKeepaliveTests {
    @Test("a slow reader of a 64 MiB stream never holds more than one window plus one message")
    func slowReader() async throws {
        let pair = try InMemoryPair()
        let window = Settings().initialStreamWindow
        let bound = 2 * window + Settings().maxMessageSize
        var received = 0
        var peak = 0
        try await pair.client.serverStreaming(TestMethods.blob, Note(number: 256)) { responses in
            for try await note in responses {
                received += note.text.utf8.count
                peak = max(peak, pair.client.bufferedInboundBytes)
                // Read slowly: give the sender every chance to run ahead of us.
                for _ in 0..<20 { await Task.yield() }
            }
        }
        #expect(received == 256 * 256 * 1024)
        #expect(peak > 0)
        #expect(peak <= bound, "buffered \(peak) bytes, bound \(bound)")
    }

    @Test("a client closes a connection whose peer stops answering keepalive pings")
    func keepaliveTimeout() async throws {
        var options = RPCOptions()
        options.keepaliveInterval = .milliseconds(50)
        options.keepaliveTimeout = .milliseconds(100)
        let (a, b) = InMemoryByteStream.pair()
        let client = RPCConnection(transport: a, side: .client, peer: nil, options: options)
        // The other end reads everything and answers nothing.
        let silent = Task { while try await !b.read(maxLength: 65536).isEmpty {} }
        let reason = await client.run()
        silent.cancel()
        #expect(reason.code == .unavailable)
        #expect(reason.message.contains("keepalive"))
    }

    @Test("a server closes a connection that stays idle past the idle timeout")
    func idleTimeout() async throws {
        var options = RPCOptions()
        options.idleTimeout = .milliseconds(100)
        let (a, b) = InMemoryByteStream.pair()
        let server = RPCConnection(
            transport: b, side: .server, peer: try PeerIdentity(role: .agent, id: "idle"), router: RPCRouter(), options: options)
        let client = RPCConnection(transport: a, side: .client, peer: nil)
        let clientRun = Task { await client.run() }
        let reason = await server.run()
        #expect(reason.message.contains("idle"))
        _ = try await waitUntil(within: .seconds(10), "the client to see the server go away") { client.isUsable ? nil : true }
        _ = await clientRun.value
    }
}

@Suite("RPC slow peers")
struct SlowPeerTests {
    @Test("a peer that connects but never sends its preface and SETTINGS is dropped")
    func silentPeer() async throws {
        var options = RPCOptions()
        options.settingsTimeout = .milliseconds(100)
        let (a, b) = InMemoryByteStream.pair()
        let server = RPCConnection(
            transport: b, side: .server, peer: try PeerIdentity(role: .agent, id: "mute"), router: RPCRouter(), options: options)
        let drain = Task { while try await !a.read(maxLength: 65536).isEmpty {} }
        let reason = await server.run()
        drain.cancel()
        #expect(reason.message.contains("no preface and SETTINGS"))
    }

    @Test("a stream whose reader never opens the window is reset, and the connection lives on")
    func zeroWindow() async throws {
        var options = RPCOptions()
        options.stalledWindowTimeout = .milliseconds(200)
        var settings = Settings.rpcDefaults
        settings.initialStreamWindow = 64 * 1024
        let (a, b) = InMemoryByteStream.pair()
        let log = ServerLog()
        let server = RPCConnection(
            transport: b, side: .server, peer: try PeerIdentity(role: .agent, id: "reader"),
            settings: settings, router: makeRouter(log: log), options: options)
        let client = RPCConnection(transport: a, side: .client, peer: nil, settings: settings)
        Task { await server.run() }
        Task { await client.run() }
        // The client opens a 64 MiB download and then never reads a message.
        let stalled = Task {
            try await client.serverStreaming(TestMethods.blob, Note(number: 256)) { _ in
                try await log.never.wait()
            }
        }
        _ = try await waitUntil(within: .seconds(10), "the download to start") { server.activeHandlerCount == 1 ? true : nil }
        _ = try await waitUntil(within: .seconds(10), "the server to reset the stalled stream") {
            server.activeHandlerCount == 0 ? true : nil
        }
        stalled.cancel()
        // Other calls on the same connection still work.
        #expect(try await client.unary(TestMethods.echo, Note(number: 9)).number == 10)
    }
}

@Suite("RPC write stalls")
struct WriteStallTests {
    @Test("a connection whose peer stops reading the socket is closed after the write-stall timeout")
    func peerStopsReading() async throws {
        var options = RPCOptions()
        options.writeStallTimeout = .milliseconds(200)
        let (a, _) = InMemoryByteStream.pair(capacity: 64 * 1024)
        let client = RPCConnection(transport: a, side: .client, peer: nil, options: options)
        let upload = Task {
            try await client.clientStreaming(TestMethods.sum) { writer in
                try await writer.write(Note(text: String(repeating: "u", count: 900 * 1024)))
            }
        }
        let reason = await client.run()
        #expect(reason.message.contains("has not read from the connection"))
        let error = await #expect(throws: RPCError.self) { _ = try await upload.value }
        #expect(error?.code == .unavailable)
    }
}
