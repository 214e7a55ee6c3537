import CascadeNet
@testable import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Synchronization
import Testing

/// Reads the server's frames from a RawPeer's wire until `done` holds over all of them.
private func collect(_ peer: RawPeer, within limit: Duration = .seconds(10), until done: @escaping @Sendable ([Frame]) -> Bool)
    async throws -> [Frame] {
    try await withTimeout(limit, on: EventLoopGroup.shared.next(), what: "waiting for the server's frames") {
        var decoder = FrameDecoder(maxFrameSize: 1 << 24, expectPreface: true)
        var frames: [Frame] = []
        while true {
            let bytes = try await peer.wire.read(maxLength: 65536)
            if bytes.isEmpty { return frames }
            decoder.feed(bytes)
            while let item = try decoder.next() {
                if case .frame(let frame) = item { frames.append(frame) }
            }
            if done(frames) { return frames }
        }
    }
}

private func trailers(_ frames: [Frame], stream: UInt32) throws -> CallTrailers? {
    guard let frame = frames.first(where: { $0.type == .trailers && $0.streamID == stream }),
          case .trailers(let block) = try FramePayload(frame) else { return nil }
    return try CallTrailers(serializedBytes: block)
}

@Suite("RPC resource bounds (rpc.md §15.1)")
struct ResourceBoundsTests {
    @Test("100 streams each claiming a 4 MiB message and sending 1 byte buffer bytes received, not bytes claimed")
    func claimedLengths() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        var frames: [Frame] = []
        for index in 0..<100 {
            let id = UInt32(2 * index + 1)
            frames.append(.headers(streamID: id, callHead("cascade.Test/Sum")))
            // 0x00400000 = 4 MiB, exactly MAX_MESSAGE_SIZE, then one byte of it.
            frames.append(.data(streamID: id, [0x00, 0x40, 0x00, 0x00, 0xAB]))
        }
        frames.append(.ping(77))
        try await peer.send(frames)
        // The PING's ACK comes after every frame before it was handled.
        _ = try await collect(peer) { $0.contains { $0.type == .ping && $0.streamID == 0 } }
        #expect(peer.server.activeHandlerCount == 100)
        let buffered = peer.server.bufferedByteCount
        // 100 bytes arrived; each partial message may round its buffer up a little. With the
        // claimed length reserved up front this was 100 x 4 MiB.
        print("buffered bytes for 100 streams x 1 byte of a claimed 4 MiB: \(buffered)")
        #expect(buffered >= 100)
        #expect(buffered < 16 * 1024)
    }

    @Test("an unknown method's metadata is never decoded; a known method's is")
    func unknownMethodMetadata() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        let metadata = (0..<1659).map { MetadataEntry("k\(String($0, radix: 16))", []) }
        func head(_ method: String) -> [UInt8] { CallHead(method: method, metadata: metadata).serializedBytes() }
        #expect(head("cascade.Test/Nope").count > 13_000)
        try await peer.send([
            .headers(streamID: 1, head("cascade.Test/Nope"), endStream: true),
            .headers(streamID: 3, head("cascade.Test/AdminOnly"), endStream: true),
        ])
        let refused = try await collect(peer) { frames in frames.filter { $0.type == .trailers }.count == 2 }
        #expect(try trailers(refused, stream: 1)?.code == .unimplemented)
        #expect(try trailers(refused, stream: 3)?.code == .permissionDenied)
        #expect(peer.server.metadataEntriesDecoded.load(ordering: .relaxed) == 0)

        // The hook does count: a call the server runs has its metadata decoded.
        try await peer.send([.headers(streamID: 5, head("cascade.Test/Echo"), endStream: true)])
        _ = try await waitUntil(within: .seconds(10), "the known call's head to be decoded") {
            peer.server.metadataEntriesDecoded.load(ordering: .relaxed) > 0 ? true : nil
        }
        #expect(peer.server.metadataEntriesDecoded.load(ordering: .relaxed) == 1659)
    }

    @Test("a stream fed one byte of credit at a time is still reset by the blocked-stream limit")
    func trickledCredit() async throws {
        var options = RPCOptions()
        options.stalledWindowTimeout = .milliseconds(300)
        let peer = try RawPeer(options: options)
        var bytes: [UInt8] = []
        Preface.encode(version: .current, into: &bytes)
        Frame.settings([Setting(.initialStreamWindow, 0)]).encode(into: &bytes)
        try await peer.wire.write(bytes)
        var request = Note(number: 1_000_000).serializedBytes()
        request = [0, 0, 0, UInt8(request.count)] + request
        try await peer.send([.headers(streamID: 1, callHead("cascade.Test/Count")), .data(streamID: 1, request, endStream: true)])
        // One byte of credit every 20 ms: under the old rule each byte restarted the clock.
        let trickle = Task {
            while !Task.isCancelled {
                try await peer.send([.windowUpdate(streamID: 1, increment: 1)])
                try await EventLoopGroup.shared.next().sleep(for: .milliseconds(20))  // the trickle's pace
            }
        }
        defer { trickle.cancel() }
        let frames = try await collect(peer) { frames in frames.contains { $0.type == .reset && $0.streamID == 1 } }
        let received = frames.filter { $0.type == .data && $0.streamID == 1 }.reduce(0) { $0 + $1.payload.count }
        #expect(received > 0, "the trickle let bytes through, so the stream was making (tiny) progress")
        let reset = try #require(frames.first { $0.type == .reset && $0.streamID == 1 })
        guard case .reset(let code) = try FramePayload(reset) else { Issue.record("not a RESET"); return }
        #expect(code == .cancel)
    }

    private func server(_ options: RPCOptions, _ pki: TestPKI) throws -> RPCServer {
        let server = try RPCServer(
            bindingTo: SocketAddress(ip: "127.0.0.1", port: 0),
            tls: TLSContext(configuration: pki.configuration(uri: "cascade://coordinator/main"), side: .server),
            router: makeRouter(log: ServerLog()), options: options)
        server.start()
        return server
    }

    private func client(_ server: RPCServer, _ pki: TestPKI, _ uri: String) throws -> RPCClient {
        RPCClient(target: server.localAddress, tls: try TLSContext(configuration: pki.configuration(uri: uri), side: .client))
    }

    @Test("the connection past an identity's cap is turned away with GOAWAY ENHANCE_YOUR_CALM; other identities connect")
    func connectionsPerIdentity() async throws {
        let pki = try TestPKI()
        var options = RPCOptions()
        options.maxConnectionsPerIdentity = 2
        let server = try server(options, pki)
        let agent = try PeerIdentity(role: .agent, id: "a-1")
        let first = try client(server, pki, "cascade://agent/a-1")
        let second = try client(server, pki, "cascade://agent/a-1")
        #expect(try await first.unary(TestMethods.echo, Note(number: 1)).number == 2)
        #expect(try await second.unary(TestMethods.echo, Note(number: 2)).number == 3)
        #expect(server.usage(of: agent).connections == 2)

        let third = try client(server, pki, "cascade://agent/a-1")
        do {
            _ = try await third.unary(TestMethods.echo, Note(number: 3))
            Issue.record("the third connection of agent/a-1 was served")
        } catch let error as RPCError {
            #expect(error.code == .unavailable)
            #expect(error.message.contains("already has 2 connections open"), "\(error.message)")
        }
        let other = try client(server, pki, "cascade://agent/a-2")
        #expect(try await other.unary(TestMethods.echo, Note(number: 4)).number == 5)

        // A closed connection gives its place back.
        first.close()
        _ = try await waitUntil(within: .seconds(10), "agent/a-1's first connection to be released") {
            server.usage(of: agent).connections == 1 ? true : nil
        }
        let fourth = try client(server, pki, "cascade://agent/a-1")
        #expect(try await fourth.unary(TestMethods.echo, Note(number: 5)).number == 6)
        for client in [second, third, other, fourth] { client.close() }
        await server.shutdown(drainTimeout: .seconds(1))
    }

    @Test("calls past an identity's cap over all its connections are refused; its running calls are not disturbed")
    func streamsPerIdentity() async throws {
        let pki = try TestPKI()
        var options = RPCOptions()
        options.maxStreamsPerIdentity = 2
        let server = try server(options, pki)
        let agent = try PeerIdentity(role: .agent, id: "a-1")
        let first = try client(server, pki, "cascade://agent/a-1")
        let second = try client(server, pki, "cascade://agent/a-1")
        let stalls = [first, second].map { client in
            Task { try await client.unary(TestMethods.stall, Note()) }
        }
        _ = try await waitUntil(within: .seconds(10), "two stalled calls") { server.usage(of: agent).streams == 2 ? true : nil }
        do {
            _ = try await first.unary(TestMethods.echo, Note(number: 1))
            Issue.record("a third call of agent/a-1 was served")
        } catch let error as RPCError {
            #expect(error.code == .unavailable)
            #expect(error.message.contains("refused"), "\(error.message)")
        }
        let other = try client(server, pki, "cascade://agent/a-2")
        #expect(try await other.unary(TestMethods.echo, Note(number: 4)).number == 5)
        for stall in stalls { stall.cancel() }
        _ = try await waitUntil(within: .seconds(10), "the stalled calls to end") { server.usage(of: agent).streams == 0 ? true : nil }
        #expect(try await first.unary(TestMethods.echo, Note(number: 6)).number == 7)
        for client in [first, second, other] { client.close() }
        await server.shutdown(drainTimeout: .seconds(1))
    }
}
