import CascadeHTTP
import CascadeNet
import CascadeTestSupport
import Foundation
import Testing

@Suite("HTTP server")
struct HTTPServerTests {
    /// A server on an ephemeral loopback port with one route; short deadlines for the abuse tests.
    static func server(_ limits: HTTPServer.Limits = HTTPServer.Limits(readTimeout: .milliseconds(400))) throws -> HTTPServer {
        let server = try HTTPServer(bindingTo: try SocketAddress(ip: "127.0.0.1", port: 0), routes: [
            "/hello": { request in HTTPResponse(status: 200, contentType: "text/plain", body: "hello \(request.path)") },
            "/slow": { _ in
                try? await Task.sleep(for: .milliseconds(300))  // a handler that takes a while (the cap test holds it)
                return HTTPResponse(status: 200, contentType: "text/plain", body: "done")
            },
        ], limits: limits)
        server.start()
        return server
    }

    @Test("GET of a known path answers 200 with the body, Content-Length and Connection: close; a query is ignored")
    func get() async throws {
        let server = try Self.server()
        defer { Task { await server.shutdown() } }
        let response = try await HTTPTestClient.get(server.localAddress, "/hello?x=1")
        #expect(response.status == 200)
        #expect(response.text == "hello /hello")
        #expect(response.headers["connection"] == "close")
        #expect(response.headers["content-length"] == "12")
        #expect(response.headers["x-content-type-options"] == "nosniff")
        #expect(response.headers["cache-control"] == "no-store")
        // A bare LF line end (RFC 9112 §2.2 lets a server accept it) works too.
        let lf = try await HTTPTestClient.exchange(server.localAddress, Array("GET /hello HTTP/1.0\n\n".utf8))
        #expect(lf.status == 200)
        #expect(server.responseCounts[200] == 2)
    }

    @Test("an unknown path is 404, a method other than GET is 405 with Allow: GET")
    func notFoundAndMethod() async throws {
        let server = try Self.server()
        defer { Task { await server.shutdown() } }
        let missing = try await HTTPTestClient.get(server.localAddress, "/nothing")
        #expect(missing.status == 404)
        #expect(missing.text.contains("/hello"))
        for method in ["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT"] {
            let request = "\(method) /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            let response = try await HTTPTestClient.exchange(server.localAddress, Array(request.utf8))
            #expect(response.status == 405, "\(method)")
            #expect(response.headers["allow"] == "GET", "\(method)")
        }
    }

    @Test("a request head over 8 KiB is answered 431 (and the answer is read, not lost to a reset)")
    func oversized() async throws {
        let server = try Self.server()
        defer { Task { await server.shutdown() } }
        let filler = String(repeating: "a", count: 20_000)
        let request = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Filler: \(filler)\r\n\r\n"
        let response = try await HTTPTestClient.exchange(server.localAddress, Array(request.utf8))
        #expect(response.status == 431)
        // A long request line without any line end is refused the same way.
        let line = try await HTTPTestClient.exchange(server.localAddress, Array(("GET /" + filler).utf8))
        #expect(line.status == 431)
        // Just under the limit is served.
        let fits = "GET /hello HTTP/1.1\r\nX-Filler: \(String(repeating: "b", count: 8000))\r\n\r\n"
        #expect(try await HTTPTestClient.exchange(server.localAddress, Array(fits.utf8)).status == 200)
    }

    @Test("a slow or silent client gets 408 once the read deadline passes, and the connection closes")
    func slowRequest() async throws {
        let server = try Self.server()
        defer { Task { await server.shutdown() } }
        let clock = ContinuousClock()
        let start = clock.now
        // Half a request line, then nothing.
        let slow = try await HTTPTestClient.exchange(server.localAddress, Array("GET /hel".utf8))
        #expect(slow.status == 408)
        #expect(clock.now - start >= .milliseconds(400))
        // Connected and silent.
        let silent = try await HTTPTestClient.exchange(server.localAddress, [])
        #expect(silent.status == 408)
        #expect(clock.now - start < .seconds(5))
        _ = try await waitUntil(within: .seconds(5), "the server to drop the connections") { server.openConnections == 0 ? true : nil }
    }

    @Test("malformed requests are 400, other HTTP versions 505, and connections past the cap 503")
    func malformedAndCapped() async throws {
        let server = try Self.server(HTTPServer.Limits(readTimeout: .seconds(2), maxConnections: 2))
        defer { Task { await server.shutdown() } }
        for text in ["GET\r\n\r\n", "GET /hello\r\n\r\n", "GET /hello FTP/1.0\r\n\r\n", "GET /hello HTTP/1.1\r\nno colon here\r\n\r\n",
                     "GET /hello HTTP/1.1\r\nX: \u{7F}\r\n\r\n", "GET hello HTTP/1.1\r\n\r\n"] {
            let response = try await HTTPTestClient.exchange(server.localAddress, Array(text.utf8))
            #expect(response.status == 400, "\(text.debugDescription)")
        }
        #expect(try await HTTPTestClient.exchange(server.localAddress, Array("GET /hello HTTP/2.0\r\n\r\n".utf8)).status == 505)
        // Two connections held open by slow handlers; a third is turned away at once.
        _ = try await waitUntil(within: .seconds(5), "the earlier connections to close") { server.openConnections == 0 ? true : nil }
        let first = Task { try await HTTPTestClient.get(server.localAddress, "/slow") }
        let second = Task { try await HTTPTestClient.get(server.localAddress, "/slow") }
        _ = try await waitUntil(within: .seconds(5), "two connections being served") { server.openConnections == 2 ? true : nil }
        let third = try await HTTPTestClient.get(server.localAddress, "/hello")
        #expect(third.status == 503)
        #expect(try await first.value.status == 200)
        #expect(try await second.value.status == 200)
        #expect(server.responseCounts[503] == 1)
    }

    @Test("listen addresses: a bare port is loopback, other addresses are taken as written")
    func listenAddresses() throws {
        #expect(try HTTPListenAddress.parse("9400") == SocketAddress(ip: "127.0.0.1", port: 9400))
        #expect(try HTTPListenAddress.parse(":9400") == SocketAddress(ip: "127.0.0.1", port: 9400))
        #expect(try HTTPListenAddress.parse("0.0.0.0:9400") == SocketAddress(ip: "0.0.0.0", port: 9400))
        #expect(try HTTPListenAddress.parse("[::1]:9400") == SocketAddress(ip: "::1", port: 9400))
        #expect(throws: NetError.self) { try HTTPListenAddress.parse("99999") }
        #expect(throws: NetError.self) { try HTTPListenAddress.parse("somewhere") }
        #expect(HTTPListenAddress.isLoopback(try SocketAddress(ip: "127.0.0.1", port: 1)))
        #expect(HTTPListenAddress.isLoopback(try SocketAddress(ip: "127.1.2.3", port: 1)))
        #expect(HTTPListenAddress.isLoopback(try SocketAddress(ip: "::1", port: 1)))
        #expect(!HTTPListenAddress.isLoopback(try SocketAddress(ip: "0.0.0.0", port: 1)))
        #expect(!HTTPListenAddress.isLoopback(try SocketAddress(ip: "10.0.0.5", port: 1)))
        #expect(!HTTPListenAddress.isLoopback(try SocketAddress(ip: "::", port: 1)))
    }

    @Test("shutdown closes the listener and the connections being served")
    func shutdown() async throws {
        let server = try Self.server(HTTPServer.Limits(readTimeout: .seconds(30)))
        let loop = EventLoopGroup.shared.next()
        let idle = try await Socket.connect(to: server.localAddress, on: loop)
        defer { idle.close() }
        _ = try await waitUntil(within: .seconds(5), "the idle connection being served") { server.openConnections == 1 ? true : nil }
        await server.shutdown()
        #expect(server.openConnections == 0)
        // The held connection was closed by the server; nothing accepts on the port.
        _ = try? await HTTPTestClient.readAll(idle)
        await #expect(throws: (any Error).self) { try await HTTPTestClient.get(server.localAddress, "/hello", within: .seconds(2)) }
    }
}
