import CascadeNet
import Testing

@Suite("Sockets")
struct SocketTests {
    @Test("addresses parse from text and print back", arguments: [
        ("127.0.1.5:7000", "127.0.1.5:7000"),
        ("[::1]:443", "[::1]:443"),
        ("localhost:80", "127.0.0.1:80"),
        ("[2001:db8::1]:9", "[2001:db8::1]:9"),
    ])
    func addressParsing(text: String, printed: String) throws {
        #expect(try SocketAddress(parsing: text).description == printed)
    }

    @Test("malformed addresses give a clear invalid-address error", arguments: [
        "127.0.0.1", "127.0.0.1:99999", "300.1.1.1:80", "[::1:80", "host:80", "",
    ])
    func badAddresses(text: String) {
        let error = #expect(throws: NetError.self) { try SocketAddress(parsing: text) }
        #expect(error?.code == .invalidAddress)
    }

    @Test("a client bound to 127.0.A.B is seen from that address (subnet emulation)")
    func bindLocalAddress() async throws {
        let listener = try TCPListener(bindingTo: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let accepting = Task { try await listener.accept() }
        let client = try await Socket.connect(
            to: listener.localAddress, from: SocketAddress(ip: "127.0.2.7", port: 0), on: EventLoopGroup.shared.next())
        let server = try await accepting.value
        #expect(server.remoteAddress?.ipString == "127.0.2.7")
        #expect(client.localAddress?.ipString == "127.0.2.7")
        try await client.write(Array("hello".utf8))
        #expect(try await server.read(maxLength: 16) == Array("hello".utf8))
        client.close()
        #expect(try await server.read(maxLength: 16).isEmpty)
    }

    @Test("IPv6 loopback connects")
    func ipv6() async throws {
        let listener: TCPListener
        do {
            listener = try TCPListener(bindingTo: SocketAddress(ip: "::1", port: 0))
        } catch {
            guard error.code == .invalidAddress else { throw error }
            return  // no IPv6 on this host; nothing to test.
        }
        defer { listener.close() }
        let accepting = Task { try await listener.accept() }
        let client = try await Socket.connect(to: listener.localAddress, on: EventLoopGroup.shared.next())
        let server = try await accepting.value
        #expect(server.remoteAddress?.ipString == "::1")
        try await server.write([1, 2, 3])
        #expect(try await client.read(maxLength: 3) == [1, 2, 3])
    }

    @Test("connecting to a closed port gives connection refused")
    func refused() async throws {
        let listener = try TCPListener(bindingTo: SocketAddress(ip: "127.0.0.1", port: 0))
        let address = listener.localAddress
        listener.close()
        let error = await #expect(throws: NetError.self) {
            _ = try await Socket.connect(to: address, on: EventLoopGroup.shared.next())
        }
        #expect(error?.code == .connectionRefused)
    }

    @Test("a write to a peer that never reads suspends (back-pressure) and cancels cleanly")
    func backPressure() async throws {
        let listener = try TCPListener(bindingTo: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let accepting = Task { try await listener.accept() }
        let client = try await Socket.connect(to: listener.localAddress, on: EventLoopGroup.shared.next())
        let server = try await accepting.value
        // 64 MiB cannot fit in loopback socket buffers: the write must wait for the reader.
        let writer = Task { try await client.write([UInt8](repeating: 7, count: 64 << 20)) }
        let first = try await server.read(maxLength: 1024)
        #expect(first.count > 0)
        writer.cancel()
        await #expect(throws: CancellationError.self) { try await writer.value }
        server.close()
    }

    @Test("closing a socket wakes a task blocked reading it")
    func closeWakesReader() async throws {
        let listener = try TCPListener(bindingTo: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let accepting = Task { try await listener.accept() }
        let client = try await Socket.connect(to: listener.localAddress, on: EventLoopGroup.shared.next())
        _ = try await accepting.value
        let reader = Task { try await client.read(maxLength: 10) }
        client.close()
        // Either the read saw the shutdown as end of stream, or it failed as closed.
        do {
            #expect(try await reader.value.isEmpty)
        } catch let error as NetError {
            #expect(error.code == .closed)
        }
    }
}

@Suite("Listener")
struct ListenerTests {
    @Test("accept on a closed listener fails as closed")
    func acceptAfterClose() async throws {
        let listener = try TCPListener(bindingTo: SocketAddress(ip: "127.0.0.1", port: 0))
        listener.close()
        let error = await #expect(throws: NetError.self) { _ = try await listener.accept() }
        #expect(error?.code == .closed)
    }
}
