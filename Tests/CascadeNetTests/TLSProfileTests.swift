import CascadeNet
import CascadeTestSupport
import Foundation
import Synchronization
import Testing

/// The outcome of each handshake a `ProfileServer` took, in order.
final class HandshakeOutcomes: Sendable {
    let list = Mutex<[Result<TLSConnection, any Error>]>([])
}

/// A server context on 127.0.0.1:0 that accepts handshakes until stopped; each outcome is kept.
final class ProfileServer: Sendable {
    let listener: TCPListener
    let context: TLSContext
    private let task: Task<Void, Never>
    private let outcomes = HandshakeOutcomes()
    var address: SocketAddress { listener.localAddress }

    init(_ configuration: TLSConfiguration) throws {
        let context = try TLSContext(configuration: configuration, side: .server)
        let listener = try TCPListener(bindingTo: SocketAddress(ip: "127.0.0.1", port: 0))
        self.context = context
        self.listener = listener
        task = Self.acceptAll(listener, context, outcomes)
    }

    private static func acceptAll(_ listener: TCPListener, _ context: TLSContext, _ outcomes: HandshakeOutcomes) -> Task<Void, Never> {
        Task {
            while let socket = try? await listener.accept() {
                // Each handshake on its own task, so a stalled client does not hold the next.
                Task {
                    let outcome = await Result { try await context.accept(socket) }
                    outcomes.list.withLock { $0.append(outcome) }
                }
            }
        }
    }

    /// The `count`-th handshake's outcome (1-based), waiting for it.
    func outcome(_ count: Int) async throws -> Result<TLSConnection, any Error> {
        try await waitUntil(within: .seconds(20), "handshake \(count) on the server") {
            self.outcomes.list.withLock { $0.count >= count ? $0[count - 1] : nil }
        }
    }

    func stop() {
        listener.close()
        task.cancel()
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// `openssl s_client` against `address`, presenting `identity` (cert and key) if given. It keeps
/// the connection until killed (`-ign_eof`), printing what it negotiated and received.
func sClient(_ address: SocketAddress, ca: String, identity: TLSConfiguration?, _ extra: [String] = []) throws -> ChildProcess {
    // Unbuffered: what it printed last (a ticket, an alert) is not held back in its stdio buffer.
    var arguments = ["stdbuf", "-o0", "openssl", "s_client", "-connect", "\(address)", "-CAfile", ca, "-ign_eof"] + extra
    if let identity { arguments += ["-cert", identity.certificateChainFile, "-key", identity.privateKeyFile] }
    return try ChildProcess("/usr/bin/env", arguments, mergeStandardError: true)
}

/// The extensions of a TLS ClientHello (type → body), parsed from the first bytes a client sends.
func clientHelloExtensions(_ bytes: [UInt8]) -> (suites: [UInt16], extensions: [UInt16: [UInt8]])? {
    var index = 5 + 4 + 2 + 32  // record header, handshake header, legacy version, random
    func u8() -> Int? { index < bytes.count ? Int(bytes[index]) : nil }
    func u16(_ at: Int) -> Int? { at + 1 < bytes.count ? Int(bytes[at]) << 8 | Int(bytes[at + 1]) : nil }
    guard bytes.count > index, bytes[0] == 0x16, bytes[5] == 0x01, let session = u8() else { return nil }
    index += 1 + session
    guard let suitesLength = u16(index) else { return nil }
    let suites = stride(from: index + 2, to: index + 2 + suitesLength, by: 2).compactMap { u16($0).map(UInt16.init) }
    index += 2 + suitesLength
    guard let compression = u8() else { return nil }
    index += 1 + compression
    guard let total = u16(index) else { return nil }
    index += 2
    let end = index + total
    var extensions: [UInt16: [UInt8]] = [:]
    while index + 4 <= end, let type = u16(index), let length = u16(index + 2), index + 4 + length <= bytes.count {
        extensions[UInt16(type)] = Array(bytes[(index + 4)..<(index + 4 + length)])
        index += 4 + length
    }
    return (suites, extensions)
}

/// Protocols/tls.md, claim by claim: what Cascade's TLS endpoints offer, accept and refuse.
@Suite("TLS profile (tls.md)", .serialized)
struct TLSProfileTests {
    @Test("a fleet client (openssl s_client) gets TLS 1.3, X25519 and an AEAD suite, no ALPN although it offers one, two tickets valid for 7200 s, no early data")
    func negotiated() async throws {
        let pki = try TestPKI()
        let server = try ProfileServer(pki.configuration(uri: "cascade://coordinator/main"))
        defer { server.stop() }
        let agent = try pki.configuration(uri: "cascade://agent/a1-01")
        let client = try sClient(server.address, ca: pki.caFile, identity: agent, ["-alpn", "h2,cascade"])
        defer { client.kill9() }
        let accepted = try await server.outcome(1).get()
        #expect(accepted.peer == (try PeerIdentity(role: .agent, id: "a1-01")))
        // Two tickets follow a full handshake.
        _ = try await waitUntil(within: .seconds(10), "two session tickets") {
            client.lines.filter { $0.hasPrefix("    Max Early Data:") }.count >= 2 ? true : nil
        }
        let lines = client.lines
        #expect(lines.contains { $0.hasPrefix("New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("Server Temp Key: X25519") }, "\(lines)")
        #expect(lines.contains("No ALPN negotiated"), "\(lines)")
        #expect(lines.contains("    TLS session ticket lifetime hint: 7200 (seconds)"), "\(lines)")
        #expect(lines.filter { $0 == "Post-Handshake New Session Ticket arrived:" }.count == 2, "\(lines)")
        #expect(lines.filter { $0.hasPrefix("    Max Early Data:") }.allSatisfy { $0 == "    Max Early Data: 0" }, "\(lines)")
        #expect(lines.contains("No client certificate CA names sent"), "\(lines)")
        await accepted.close(linger: .zero)
    }

    @Test("a client offering only groups outside X25519, P-256 and P-384 is refused with a handshake-failure alert",
          arguments: ["P-521", "ffdhe2048", "X448"])
    func groups(_ group: String) async throws {
        let pki = try TestPKI()
        let server = try ProfileServer(pki.configuration(uri: "cascade://coordinator/main"))
        defer { server.stop() }
        let agent = try pki.configuration(uri: "cascade://agent/a1-01")
        let client = try sClient(server.address, ca: pki.caFile, identity: agent, ["-groups", group])
        let error = try #require(try await server.outcome(1).failure as? TLSError)
        #expect(error.code == .handshake, "\(error)")
        #expect(try await client.exitStatus() != 0)
        #expect(client.lines.contains { $0.contains("alert handshake failure") }, "\(client.lines)")
    }

    @Test("each of P-256 and P-384 alone is accepted", arguments: ["P-256", "P-384"])
    func nistGroups(_ group: String) async throws {
        let pki = try TestPKI()
        let server = try ProfileServer(pki.configuration(uri: "cascade://coordinator/main"))
        defer { server.stop() }
        let agent = try pki.configuration(uri: "cascade://agent/a1-01")
        let client = try sClient(server.address, ca: pki.caFile, identity: agent, ["-groups", group])
        defer { client.kill9() }
        let accepted = try await server.outcome(1).get()
        _ = try await client.line(startingWith: "Server Temp Key: ")
        let curve = group == "P-256" ? "prime256v1" : "secp384r1"
        #expect(client.lines.contains { $0.hasPrefix("Server Temp Key: ECDH, \(curve)") }, "\(client.lines)")
        await accepted.close(linger: .zero)
    }

    @Test("a client offering only a suite outside the three AEAD suites (TLS_AES_128_CCM_SHA256) is refused with a handshake-failure alert")
    func cipherSuites() async throws {
        let pki = try TestPKI()
        let server = try ProfileServer(pki.configuration(uri: "cascade://coordinator/main"))
        defer { server.stop() }
        let agent = try pki.configuration(uri: "cascade://agent/a1-01")
        let client = try sClient(server.address, ca: pki.caFile, identity: agent, ["-ciphersuites", "TLS_AES_128_CCM_SHA256"])
        let error = try #require(try await server.outcome(1).failure as? TLSError)
        #expect(error.code == .handshake, "\(error)")
        #expect(try await client.exitStatus() != 0)
        #expect(client.lines.contains { $0.contains("alert handshake failure") }, "\(client.lines)")
    }

    @Test("a Cascade client's ClientHello: TLS 1.3 only, the three AEAD suites, groups X25519, P-256, P-384, no server name, no ALPN, PSK only with (EC)DHE")
    func clientHello() async throws {
        let pki = try TestPKI()
        let listener = try TCPListener(bindingTo: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let context = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1-01"), side: .client)
        let dial = Task { try await context.connect(to: listener.localAddress) }
        defer { dial.cancel() }
        let socket = try await listener.accept()
        var bytes: [UInt8] = []
        // The whole ClientHello record: its length is in the record header.
        while bytes.count < 5 || bytes.count < 5 + (Int(bytes[3]) << 8 | Int(bytes[4])) {
            let more = try await socket.read(maxLength: 4096)
            if more.isEmpty { break }
            bytes += more
        }
        socket.close()
        let hello = try #require(clientHelloExtensions(bytes), "not a ClientHello: \(bytes.prefix(16))")
        // Cipher suites, in the order offered (no TLS 1.2 suites, no renegotiation SCSV besides).
        #expect(hello.suites.filter { $0 != 0x00FF } == [0x1302, 0x1303, 0x1301])
        #expect(hello.extensions[0x002B] == [0x02, 0x03, 0x04])  // supported_versions: TLS 1.3 only
        #expect(hello.extensions[0x000A] == [0x00, 0x06, 0x00, 0x1D, 0x00, 0x17, 0x00, 0x18])  // X25519, P-256, P-384
        #expect(hello.extensions[0x0033].map { Array($0.prefix(4)) } == [0x00, 0x24, 0x00, 0x1D])  // one key share: X25519
        #expect(hello.extensions[0x002D] == [0x01, 0x01])  // psk_key_exchange_modes: psk_dhe_ke only
        #expect(hello.extensions[0x0000] == nil)  // no server_name
        #expect(hello.extensions[0x0010] == nil)  // no ALPN
        #expect(hello.extensions[0x002A] == nil)  // no early data
    }

    @Test("the client checks no host name: a server certificate whose DNS and IP SANs do not name the address dialled is accepted; the role is checked instead (by RPCClient)")
    func noHostNameCheck() async throws {
        let pki = try TestPKI()
        let server = try ProfileServer(pki.configuration(uri: "cascade://coordinator/main", ipAddresses: ["10.9.9.9"], dnsNames: ["elsewhere.invalid"]))
        defer { server.stop() }
        let client = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1-01"), side: .client)
        let connection = try await client.connect(to: server.address)
        #expect(connection.peer == (try PeerIdentity(role: .coordinator, id: "main")))
        let accepted = try await server.outcome(1).get()
        await connection.close(linger: .zero)
        await accepted.close(linger: .zero)
    }

    @Test("a client certificate without clientAuth is refused with an unsupported-certificate alert; a server certificate without serverAuth likewise")
    func extendedKeyUsage() async throws {
        let pki = try TestPKI()
        let server = try ProfileServer(pki.configuration(uri: "cascade://coordinator/main"))
        defer { server.stop() }
        let serverOnly = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1-01", extendedKeyUsage: "serverAuth"), side: .client)
        // TLS 1.3: the client has finished its part when the server checks its certificate.
        let first = try? await serverOnly.connect(to: server.address)
        let refused = try #require(try await server.outcome(1).failure as? TLSError)
        #expect(refused.code == .peerCertificate, "\(refused)")
        #expect(refused.message.contains("unsuitable certificate purpose"), "\(refused)")
        if let first {
            // What the client then reads is the alert.
            let error = await #expect(throws: (any Error).self) { _ = try await first.read(maxLength: 1) }
            #expect("\(String(describing: error))".contains("unsupported certificate"), "\(String(describing: error))")
        }

        let clientOnlyServer = try ProfileServer(pki.configuration(uri: "cascade://agent/a1-02", extendedKeyUsage: "clientAuth"))
        defer { clientOnlyServer.stop() }
        let client = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1-03"), side: .client)
        let error = await #expect(throws: TLSError.self) { _ = try await client.connect(to: clientOnlyServer.address) }
        #expect(error?.code == .peerCertificate)
        #expect(error?.message.contains("unsuitable certificate purpose") == true, "\(String(describing: error))")
        let serverSide = try #require(try await clientOnlyServer.outcome(1).failure as? TLSError)
        #expect(serverSide.message.contains("alert unsupported certificate"), "\(serverSide)")
    }

    @Test("a certificate without exactly one valid cascade:// identity is refused during the handshake with a bad-certificate alert, by either side",
          arguments: ["none", "two", "bad id", "bad role"])
    func identityInHandshake(_ kind: String) async throws {
        let pki = try TestPKI()
        func flawed(_ name: String) throws -> TLSConfiguration {
            switch kind {
            case "none": try pki.configuration(uri: nil, name: name)
            case "two": try pki.configuration(uri: "cascade://agent/\(name)", name: name, extraURIs: ["cascade://agent/\(name)-twin"])
            case "bad id": try pki.configuration(uri: "cascade://agent/has space", name: name)
            default: try pki.configuration(uri: "cascade://admin/\(name)", name: name)
            }
        }
        // A client with it: the server refuses, and the client reads the alert.
        let server = try ProfileServer(pki.configuration(uri: "cascade://coordinator/main"))
        defer { server.stop() }
        let client = try sClient(server.address, ca: pki.caFile, identity: try flawed("client"))
        let refused = try #require(try await server.outcome(1).failure as? TLSError)
        #expect(refused.code == .identity, "\(refused)")
        #expect(refused.message.contains("cascade://"), "\(refused)")
        _ = try await client.exitStatus()
        #expect(client.lines.contains { $0.contains("alert bad certificate") }, "\(client.lines)")

        // A server with it: a Cascade client refuses, and the server reads the alert.
        let flawedServer = try ProfileServer(try flawed("server"))
        defer { flawedServer.stop() }
        let context = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1-01"), side: .client)
        let error = await #expect(throws: TLSError.self) { _ = try await context.connect(to: flawedServer.address) }
        #expect(error?.code == .identity, "\(String(describing: error))")
        let serverSide = try #require(try await flawedServer.outcome(1).failure as? TLSError)
        #expect(serverSide.message.contains("alert bad certificate"), "\(serverSide)")
    }

    @Test("the alert a refused client certificate gets: none sent, expired, not yet valid, from another CA",
          arguments: ["none", "expired", "not yet valid", "other CA"])
    func refusedClientCertificate(_ kind: String) async throws {
        let pki = try TestPKI()
        let other = try TestPKI(name: "another CA")  // held: its files go with it
        let server = try ProfileServer(pki.configuration(uri: "cascade://coordinator/main"))
        defer { server.stop() }
        let identity: TLSConfiguration?
        let alert: String
        switch kind {
        case "none":
            (identity, alert) = (nil, "alert certificate required")
        case "expired":
            let now = Int64(Date().timeIntervalSince1970)
            (identity, alert) = (try pki.configuration(uri: "cascade://agent/old", validFrom: now - 7200, validUntil: now - 3600), "alert certificate expired")
        case "not yet valid":
            let now = Int64(Date().timeIntervalSince1970)
            (identity, alert) = (try pki.configuration(uri: "cascade://agent/new", validFrom: now + 3600, validUntil: now + 7200), "alert bad certificate")
        default:
            (identity, alert) = (try other.configuration(uri: "cascade://agent/stranger"), "alert unknown ca")
        }
        let client = try sClient(server.address, ca: pki.caFile, identity: identity)
        #expect(try await server.outcome(1).failure != nil)
        _ = try await client.exitStatus()
        #expect(client.lines.contains { $0.contains(alert) }, "\(client.lines)")
    }

    @Test("a Cascade client refuses a server certificate from another CA with an unknown-CA alert")
    func refusedServerCertificate() async throws {
        let pki = try TestPKI()
        let other = try TestPKI(name: "another CA")
        let server = try ProfileServer(other.configuration(uri: "cascade://coordinator/main"))
        defer { server.stop() }
        let client = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1-01"), side: .client)
        let error = await #expect(throws: TLSError.self) { _ = try await client.connect(to: server.address) }
        #expect(error?.code == .peerCertificate)
        let serverSide = try #require(try await server.outcome(1).failure as? TLSError)
        #expect(serverSide.message.contains("alert unknown ca"), "\(serverSide)")
    }

    @Test("a session resumes (no certificate exchanged) with the identity it was made with")
    func resumption() async throws {
        let pki = try TestPKI()
        let server = try ProfileServer(pki.configuration(uri: "cascade://coordinator/main"))
        defer { server.stop() }
        let client = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1-01"), side: .client)
        let first = try await client.connect(to: server.address)
        let firstAccepted = try await server.outcome(1).get()
        // The ticket arrives after the handshake: reading lets the client take it.
        try await firstAccepted.write([1])
        #expect(try await first.read(maxLength: 1) == [1])
        await first.close(linger: .seconds(1))
        await firstAccepted.close(linger: .zero)
        let second = try await client.connect(to: server.address)
        let secondAccepted = try await server.outcome(2).get()
        #expect(!first.isResumed && second.isResumed && secondAccepted.isResumed)
        #expect(secondAccepted.peer == (try PeerIdentity(role: .agent, id: "a1-01")))
        #expect(second.peer == (try PeerIdentity(role: .coordinator, id: "main")))
        await second.close(linger: .zero)
        await secondAccepted.close(linger: .zero)
    }
}
