import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Testing

/// A TLS RPC server on 127.0.0.1:0 with the test router, and a client context for agents.
struct TLSFixture {
    let pki: TestPKI
    let server: RPCServer
    let clientTLS: TLSContext
    let log = ServerLog()

    init(options: RPCOptions = RPCOptions()) throws {
        pki = try TestPKI()
        let serverTLS = try TLSContext(configuration: pki.configuration(uri: "cascade://coordinator/main"), side: .server)
        server = try RPCServer(
            bindingTo: SocketAddress(ip: "127.0.0.1", port: 0), tls: serverTLS, router: makeRouter(log: log), options: options)
        clientTLS = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1-01"), side: .client)
        server.start()
    }

    func client(backoff: Backoff = Backoff(initial: .milliseconds(10), maximum: .milliseconds(100))) -> RPCClient {
        RPCClient(target: server.localAddress, tls: clientTLS, expectedRole: .coordinator, backoff: backoff)
    }
}

@Suite("RPC server and client over TLS")
struct ServerClientTests {
    @Test("a reconnect after the connection drops resumes the TLS session")
    func resumption() async throws {
        let fixture = try TLSFixture()
        let client = fixture.client()
        #expect(try await client.unary(TestMethods.echo, Note(number: 1)).number == 2)
        let first = try await client.connection()
        #expect(!first.isResumedTLS)
        first.close()
        _ = try await waitUntil(within: .seconds(10), "the first connection to close") { first.isUsable ? nil : true }
        #expect(try await client.unary(TestMethods.echo, Note(number: 2)).number == 3)
        let second = try await client.connection()
        #expect(second !== first)
        #expect(second.isResumedTLS)
        client.close()
        await fixture.server.shutdown(drainTimeout: .seconds(1))
    }

    @Test("a client refuses a server whose certificate has the wrong role")
    func wrongServerRole() async throws {
        let fixture = try TLSFixture()
        let client = RPCClient(target: fixture.server.localAddress, tls: fixture.clientTLS, expectedRole: .agent)
        let error = await #expect(throws: RPCError.self) { _ = try await client.unary(TestMethods.echo, Note()) }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("not a agent") == true)
        await fixture.server.shutdown(drainTimeout: .seconds(1))
    }

    @Test("drain lets a call in flight finish, then the server is gone")
    func drain() async throws {
        let fixture = try TLSFixture()
        let client = fixture.client()
        let inFlight = Task { try await client.unary(TestMethods.gated, Note(number: 7)) }
        _ = try await waitUntil(within: .seconds(10), "the call to start") {
            fixture.log.startedHandlers.load(ordering: .relaxed) == 1 ? true : nil
        }
        let connection = try await client.connection()
        let shutdown = Task { await fixture.server.shutdown(drainTimeout: .seconds(20)) }
        // The client hears GOAWAY and stops using the connection for new calls...
        _ = try await waitUntil(within: .seconds(10), "GOAWAY to reach the client") { connection.isUsable ? nil : true }
        // ...while the call already running completes normally.
        fixture.log.gate.open()
        #expect(try await inFlight.value == Note(text: "done", number: 7))
        await shutdown.value
        #expect(fixture.server.connectionCount == 0)
        let error = await #expect(throws: RPCError.self) { _ = try await client.unary(TestMethods.echo, Note()) }
        #expect(error?.code == .unavailable)
    }

    @Test("the server counts handshakes it refused")
    func handshakeFailure() async throws {
        let fixture = try TLSFixture()
        let rogue = try TestPKI(name: "rogue")
        let rogueTLS = try TLSContext(
            configuration: rogue.configuration(uri: "cascade://agent/x", trusting: fixture.pki.caFile), side: .client)
        let client = RPCClient(target: fixture.server.localAddress, tls: rogueTLS, backoff: Backoff(initial: .milliseconds(1)))
        _ = try? await client.unary(TestMethods.echo, Note())
        _ = try await waitUntil(within: .seconds(10), "the refused handshake to be counted") {
            fixture.server.handshakeFailures >= 1 ? true : nil
        }
        #expect(fixture.server.lastHandshakeFailure?.contains("unable to get local issuer certificate") == true)
        await fixture.server.shutdown(drainTimeout: .seconds(1))
    }
}

@Suite("RPC client behaviour")
struct ClientBehaviourTests {
    @Test("a caller's timeout reaches the server as the handler's deadline")
    func deadlinePropagation() async throws {
        let pair = try InMemoryPair()
        let withTimeout = try await pair.client.unary(TestMethods.deadline, Note(), options: CallOptions(timeout: .seconds(5)))
        #expect(withTimeout.text == "set")
        #expect(withTimeout.number > 0 && withTimeout.number <= 5_000_000)
        let without = try await pair.client.unary(TestMethods.deadline, Note())
        #expect(without.text == "none")
    }

    @Test("after the server closes an idle connection the client reconnects for the next call")
    func reconnect() async throws {
        var options = RPCOptions()
        // Long enough that a loaded machine still starts each call on a fresh connection
        // before that connection counts as idle.
        options.idleTimeout = .seconds(1)
        let fixture = try TLSFixture(options: options)
        let client = fixture.client()
        #expect(try await client.unary(TestMethods.echo, Note(number: 1)).number == 2)
        let first = try await client.connection()
        _ = try await waitUntil(within: .seconds(10), "the server to close the idle connection") { first.isUsable ? nil : true }
        #expect(try await client.unary(TestMethods.echo, Note(number: 2)).number == 3)
        #expect(try await client.connection() !== first)
        client.close()
        await fixture.server.shutdown(drainTimeout: .seconds(1))
    }
}
