import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Testing

@Suite("RPC over real mutual TLS")
struct TLSCallTests {
    @Test("every call shape works over TLS, and the server knows the caller from its certificate")
    func overTLS() async throws {
        let pki = try TestPKI()
        let serverContext = try TLSContext(configuration: pki.configuration(uri: "cascade://coordinator/main"), side: .server)
        let clientContext = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a2-07"), side: .client)
        let listener = try TCPListener(bindingTo: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let log = ServerLog()
        let router = makeRouter(log: log)
        let serving = Task {
            let tls = try await serverContext.accept(listener.accept())
            await RPCConnection(transport: tls, side: .server, peer: tls.peer, router: router).run()
        }
        defer { serving.cancel() }
        let tls = try await clientContext.connect(to: listener.localAddress, from: SocketAddress(ip: "127.0.2.7", port: 0))
        #expect(tls.peer.role == .coordinator)
        let client = RPCConnection(transport: tls, side: .client, peer: tls.peer)
        let running = Task { await client.run() }
        defer { running.cancel() }

        #expect(try await client.unary(TestMethods.echo, Note(text: "over tls", number: 6)) == Note(text: "over tls", number: 7))
        #expect(log.peers.withLock { $0 } == ["agent a2-07"])
        var count = 0
        try await client.serverStreaming(TestMethods.count, Note(number: 300)) { responses in
            for try await _ in responses { count += 1 }
        }
        #expect(count == 300)
        let denied = await #expect(throws: RPCError.self) { _ = try await client.unary(TestMethods.adminOnly, Note()) }
        #expect(denied?.code == .permissionDenied)
        let sum = try await client.clientStreaming(TestMethods.sum) { writer in
            for value in 1...100 { try await writer.write(Note(number: UInt64(value))) }
        }
        #expect(sum == Note(text: "100", number: 5050))
        let echoed = try await client.bidirectional(TestMethods.chat) { writer, responses in
            var iterator = responses.makeAsyncIterator()
            try await writer.write(Note(text: "tls"))
            return try await iterator.next()?.text
        }
        #expect(echoed == "TLS")
    }
}
