import CascadeCrypto
import CascadeNet
import CascadeTestSupport
import Foundation
import Testing

/// A server context on 127.0.0.1:0 taking exactly one handshake.
struct OneShotServer {
    let listener: TCPListener
    let context: TLSContext
    var address: SocketAddress { listener.localAddress }

    init(_ configuration: TLSConfiguration) throws {
        context = try TLSContext(configuration: configuration, side: .server)
        listener = try TCPListener(bindingTo: SocketAddress(ip: "127.0.0.1", port: 0))
    }

    /// Starts accepting; the task's value is the server's view of the handshake.
    func acceptOne() -> Task<TLSConnection, any Error> {
        Task { [listener, context] in
            defer { listener.close() }
            return try await context.accept(listener.accept())
        }
    }
}

@Suite("TLS")
struct TLSTests {
    @Test("mutual TLS 1.3: each side learns the other's role and id from its certificate")
    func identities() async throws {
        let pki = try TestPKI()
        let server = try OneShotServer(pki.configuration(uri: "cascade://coordinator/main"))
        let serverSide = server.acceptOne()
        let client = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1-01"), side: .client)
        let connection = try await client.connect(to: server.address)
        let accepted = try await serverSide.value
        #expect(connection.peer == (try PeerIdentity(role: .coordinator, id: "main")))
        #expect(accepted.peer == (try PeerIdentity(role: .agent, id: "a1-01")))

        // Both directions at once, 4 MiB each, content checked by SHA-256.
        let payload = SecureRandom.bytes(4 << 20)
        let upload = Task { try await connection.write(payload) }
        let download = Task { try await accepted.write(payload) }
        let received = try await readAll(accepted, count: payload.count)
        let echoed = try await readAll(connection, count: payload.count)
        try await upload.value
        try await download.value
        #expect(SHA256.hash(received) == SHA256.hash(payload))
        #expect(SHA256.hash(echoed) == SHA256.hash(payload))

        // close_notify reaches the peer as a clean end of stream; the client's close lingers
        // until the server closes too.
        let closing = Task { await connection.close() }
        #expect(try await accepted.read(maxLength: 100).isEmpty)
        await accepted.close()
        await closing.value
        #expect(connection.socket.closed)
    }

    @Test("a TCP close without close_notify is reported as an unexpected EOF, not a clean end")
    func truncation() async throws {
        let pki = try TestPKI()
        let server = try OneShotServer(pki.configuration(uri: "cascade://coordinator/main"))
        let serverSide = server.acceptOne()
        let connection = try await TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1"), side: .client)
            .connect(to: server.address)
        let accepted = try await serverSide.value
        // Let the server's session tickets arrive first, so the client's abrupt close is a clean FIN.
        try await accepted.write([42])
        #expect(try await connection.read(maxLength: 1) == [42])
        connection.socket.close()
        let error = await #expect(throws: TLSError.self) { _ = try await accepted.read(maxLength: 10) }
        #expect(error?.code == .unexpectedEOF)
    }

    @Test("a client certificate from another CA is refused with a verification error")
    func otherCA() async throws {
        let fleet = try TestPKI(name: "fleet CA")
        let rogue = try TestPKI(name: "rogue CA")
        let server = try OneShotServer(fleet.configuration(uri: "cascade://coordinator/main"))
        let serverSide = server.acceptOne()
        let client = try TLSContext(
            configuration: rogue.configuration(uri: "cascade://agent/a1", trusting: fleet.caFile), side: .client)
        _ = try? await client.connect(to: server.address).read(maxLength: 1)
        let error = await #expect(throws: TLSError.self) { try await serverSide.value }
        #expect(error?.code == .peerCertificate)
        #expect(error?.message.contains("unable to get local issuer certificate") == true)
    }

    @Test("an expired client certificate is refused and the error says so")
    func expired() async throws {
        let pki = try TestPKI()
        let server = try OneShotServer(pki.configuration(uri: "cascade://coordinator/main"))
        let serverSide = server.acceptOne()
        let now = Int64(Date().timeIntervalSince1970)
        let client = try TLSContext(
            configuration: pki.configuration(uri: "cascade://agent/old", validFrom: now - 86_400 * 10, validUntil: now - 86_400),
            side: .client)
        _ = try? await client.connect(to: server.address).read(maxLength: 1)
        let error = await #expect(throws: TLSError.self) { try await serverSide.value }
        #expect(error?.code == .peerCertificate)
        #expect(error?.message.contains("certificate has expired") == true)
    }

    @Test("a certificate without a cascade:// URI is refused as having no identity")
    func noIdentity() async throws {
        let pki = try TestPKI()
        let server = try OneShotServer(pki.configuration(uri: "cascade://coordinator/main"))
        let serverSide = server.acceptOne()
        let client = try TLSContext(configuration: pki.configuration(uri: nil, name: "nobody"), side: .client)
        _ = try? await client.connect(to: server.address)
        let error = await #expect(throws: TLSError.self) { try await serverSide.value }
        #expect(error?.code == .identity)
        #expect(error?.message.contains("cascade://<role>/<id>") == true)
    }

    @Test("a client that connects and says nothing is cut off at the handshake timeout")
    func slowloris() async throws {
        let pki = try TestPKI()
        let server = try OneShotServer(pki.configuration(uri: "cascade://coordinator/main", handshakeTimeout: .milliseconds(200)))
        let serverSide = server.acceptOne()
        let silent = try await Socket.connect(to: server.address, on: EventLoopGroup.shared.next())
        let error = await #expect(throws: NetError.self) { try await serverSide.value }
        #expect(error?.code == .timedOut)
        // The server closed its end: the silent client sees end of stream.
        #expect(try await silent.read(maxLength: 10).isEmpty)
    }

    @Test("openssl s_client without a client certificate is refused")
    func opensslNoCertificate() async throws {
        let pki = try TestPKI()
        let server = try OneShotServer(pki.configuration(uri: "cascade://coordinator/main"))
        let serverSide = server.acceptOne()
        let client = try ChildProcess("/usr/bin/env", [
            "openssl", "s_client", "-connect", "\(server.address)", "-CAfile", pki.caFile, "-tls1_3",
        ], mergeStandardError: true)
        let error = await #expect(throws: TLSError.self) { try await serverSide.value }
        #expect(error?.code == .handshake)
        #expect(error?.message.contains("peer did not return a certificate") == true)
        client.kill9()
    }

    @Test("openssl s_client offering only TLS 1.2 is refused with a protocol-version alert")
    func opensslTLS12() async throws {
        let pki = try TestPKI()
        let server = try OneShotServer(pki.configuration(uri: "cascade://coordinator/main"))
        let agent = try pki.configuration(uri: "cascade://agent/legacy")
        let serverSide = server.acceptOne()
        let client = try ChildProcess("/usr/bin/env", [
            "openssl", "s_client", "-connect", "\(server.address)", "-CAfile", pki.caFile, "-tls1_2",
            "-cert", agent.certificateChainFile, "-key", agent.privateKeyFile,
        ], mergeStandardError: true)
        let error = await #expect(throws: TLSError.self) { try await serverSide.value }
        #expect(error?.code == .handshake)
        #expect(error?.message.contains("unsupported protocol") == true)
        let status = try await client.exitStatus()
        #expect(status != 0)
        #expect(client.lines.contains { $0.contains("alert protocol version") })
    }

    @Test("two processes exchange 64 MiB over mutual TLS with SHA-256 checked on both ends")
    func crossProcess() async throws {
        let pki = try TestPKI()
        let receiverTLS = try pki.configuration(uri: "cascade://agent/receiver")
        let senderTLS = try pki.configuration(uri: "cascade://agent/sender")
        let bench = try builtProduct("cascade-bench")
        let receiver = try ChildProcess(bench, [
            "tls-recv", "--bind", "127.0.0.1", "--port", "0", "--reply-digest",
            "--ca", pki.caFile, "--cert", receiverTLS.certificateChainFile, "--key", receiverTLS.privateKeyFile,
        ])
        let port = try await receiver.line(startingWith: "listening ").split(separator: " ")[1]
        let sender = try ChildProcess(bench, [
            "tls-send", "--host", "127.0.0.1", "--port", String(port), "--bytes", "\(64 << 20)", "--expect-digest",
            "--ca", pki.caFile, "--cert", senderTLS.certificateChainFile, "--key", senderTLS.privateKeyFile,
        ])
        let sent = try await sender.line(startingWith: "result ", within: .seconds(120))
        let received = try await receiver.line(startingWith: "result ", within: .seconds(30))
        #expect(try await sender.exitStatus() == 0)
        #expect(try await receiver.exitStatus() == 0)
        #expect(field("bytes", sent) == "\(64 << 20)")
        #expect(field("bytes", received) == "\(64 << 20)")
        #expect(field("chunks", received) == "64")
        let digest = try #require(field("digest", received))
        #expect(digest.count == 64)
        // The sender checked the receiver's digest against its own before printing it.
        #expect(field("digest", sent) == digest)
        // And the data the sender promises (its 1 MiB pattern block, 64 times) has that digest.
        let hasher = SHA256()
        let block = patternChunk(0)
        for _ in 0..<64 { hasher.update(block) }
        #expect(hasher.finalize().hex == digest)
    }

    private func patternChunk(_ index: Int) -> [UInt8] {
        // Mirrors TLSBulk.pattern: byte i is byte (i % 8) of SplitMix64(i / 8).
        let start = index << 20
        var out = [UInt8](repeating: 0, count: 1 << 20)
        for word in 0..<(1 << 17) {
            var z = UInt64((start >> 3) + word) &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z = z ^ (z >> 31)
            for byte in 0..<8 { out[word * 8 + byte] = UInt8(truncatingIfNeeded: z >> (UInt64(byte) * 8)) }
        }
        return out
    }
}

func readAll(_ connection: TLSConnection, count: Int) async throws -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(count)
    while out.count < count {
        let bytes = try await connection.read(maxLength: count - out.count)
        if bytes.isEmpty { break }
        out += bytes
    }
    return out
}

func field(_ name: String, _ line: String) -> String? {
    line.split(separator: " ").first { $0.hasPrefix("\(name)=") }.map { String($0.dropFirst(name.count + 1)) }
}

@Suite("TLS configuration errors")
struct TLSConfigurationTests {
    @Test("an encrypted private key is refused with a clear error instead of a passphrase prompt")
    func encryptedKey() async throws {
        let pki = try TestPKI()
        var configuration = try pki.configuration(uri: "cascade://agent/locked")
        let encrypted = pki.directory.file("locked-encrypted.key")
        let openssl = try ChildProcess("/usr/bin/env", [
            "openssl", "pkey", "-in", configuration.privateKeyFile, "-aes256", "-passout", "pass:secret", "-out", encrypted,
        ])
        #expect(try await openssl.exitStatus() == 0)
        configuration.privateKeyFile = encrypted
        let error = #expect(throws: TLSError.self) { _ = try TLSContext(configuration: configuration, side: .client) }
        #expect(error?.code == .configuration)
        #expect(error?.message.contains("encrypted keys are not supported") == true)
    }

    @Test("a missing certificate file names the file")
    func missingFile() throws {
        let pki = try TestPKI()
        var configuration = try pki.configuration(uri: "cascade://agent/a")
        configuration.certificateChainFile = "/nonexistent/agent.pem"
        let error = #expect(throws: TLSError.self) { _ = try TLSContext(configuration: configuration, side: .server) }
        #expect(error?.message.contains("/nonexistent/agent.pem") == true)
    }
}
