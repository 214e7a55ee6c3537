import CascadeCrypto
import CascadeTestSupport
import Foundation
import Testing
@testable import CascadeNet

/// What each side of a refused handshake says: the server's error (what its log shows) and the
/// client's (what an operator or an agent's log shows).
struct RefusalSides {
    let server: TLSError
    let client: TLSError
}

/// A client with `clientConfiguration` against a server with `serverConfiguration`; both errors.
func refusal(server serverConfiguration: TLSConfiguration, client clientConfiguration: TLSConfiguration) async throws -> RefusalSides {
    let server = try OneShotServer(serverConfiguration)
    let serverSide = server.acceptOne()
    let client = try TLSContext(configuration: clientConfiguration, side: .client)
    let clientError: TLSError
    do {
        // TLS 1.3: the client has finished its part when the server checks its certificate, so
        // a refusal of the client arrives as an alert on its first read.
        let connection = try await client.connect(to: server.address)
        try await connection.write([0])
        _ = try await connection.read(maxLength: 1)
        throw TestFailure("the client was not refused")
    } catch let error as TLSError {
        clientError = error
    }
    do {
        _ = try await serverSide.value
        throw TestFailure("the server accepted the handshake")
    } catch let error as TLSError {
        return RefusalSides(server: error, client: clientError)
    }
}

@Suite("TLS errors that say what to do")
struct TLSErrorTests {
    static let now = Int64(Date().timeIntervalSince1970)

    @Test("a refused client certificate: the server names the certificate, the cause and the fix; the client, told by the alert, says the same of its own certificate",
          arguments: ["expired", "not yet valid", "unknown CA", "no cascade SAN", "two cascade SANs", "no clientAuth"])
    func refusedClient(_ kind: String) async throws {
        let pki = try TestPKI()
        let rogue = try TestPKI(name: "rogue CA")
        let serverConfiguration = try pki.configuration(uri: "cascade://coordinator/main")
        let client: TLSConfiguration
        let reason: TLSError.Reason
        let serverSays: [String]
        let clientSays: [String]
        switch kind {
        case "expired":
            client = try pki.configuration(uri: "cascade://operator/old", validFrom: Self.now - 10 * 86_400, validUntil: Self.now - 2 * 86_400)
            reason = .expired
            serverSays = ["the client's certificate (subject CN=operator-old, cascade://operator/old) expired at ", "(2 days ago)", "renew it: certs/make-dev-certs.sh", "certificate has expired"]
            clientSays = ["the server refused this program's certificate \(client.certificateChainFile) (subject CN=operator-old, cascade://operator/old): it expired at ", "renew it"]
        case "not yet valid":
            client = try pki.configuration(uri: "cascade://agent/early", validFrom: Self.now + 7200, validUntil: Self.now + 86_400)
            reason = .notYetValid
            serverSays = ["the client's certificate (subject CN=agent-early, cascade://agent/early) is not valid until ", "(in 2 hours)", "check the clocks of both hosts"]
            clientSays = ["the server refused this program's certificate \(client.certificateChainFile)", "is not valid until ", "check the clocks"]
        case "unknown CA":
            client = try rogue.configuration(uri: "cascade://operator/mallory", trusting: pki.caFile)
            reason = .unknownCA
            serverSays = ["the client's certificate (subject CN=operator-mallory, cascade://operator/mallory), issued by CN=rogue CA, is not from a CA in the trust bundle \(pki.caFile)", "give the client a certificate from the fleet CA", "unable to get local issuer certificate"]
            clientSays = ["the server does not trust the CA that issued this program's certificate \(client.certificateChainFile) (subject CN=operator-mallory, cascade://operator/mallory): CN=rogue CA; use a certificate from the fleet CA"]
        case "no cascade SAN":
            client = try pki.configuration(uri: nil, name: "nobody")
            reason = .noIdentity
            serverSays = ["the client's certificate (subject CN=nobody) has no cascade://<role>/<id> URI in its subjectAltName", "exactly one cascade://<role>/<id> URI", "reissue it"]
            clientSays = ["the server refused this program's certificate \(client.certificateChainFile) (subject CN=nobody): it has no cascade://<role>/<id> URI", "reissue it"]
        case "two cascade SANs":
            client = try pki.configuration(uri: "cascade://agent/a1", extraURIs: ["cascade://agent/a2"])
            reason = .severalIdentities
            serverSays = ["has 2 cascade:// URIs (cascade://agent/a1, cascade://agent/a2); exactly one is allowed"]
            clientSays = ["it has 2 cascade:// URIs (cascade://agent/a1, cascade://agent/a2); exactly one is allowed"]
        default:
            client = try pki.configuration(uri: "cascade://operator/server-only", extendedKeyUsage: "serverAuth")
            reason = .wrongPurpose
            serverSays = ["may not be used by a TLS client: its extended key usage lacks clientAuth", "reissue it with extendedKeyUsage clientAuth"]
            clientSays = ["the server refused this program's certificate", "as unsuitable for a TLS client: its extended key usage must include clientAuth"]
        }
        let sides = try await refusal(server: serverConfiguration, client: client)
        #expect(sides.server.reason == reason, "\(sides.server)")
        #expect(!sides.server.refusedByPeer)
        #expect(sides.server.message.hasPrefix("TLS handshake from 127.0.0.1:"), "\(sides.server)")
        for phrase in serverSays { #expect(sides.server.message.contains(phrase), "server: \(sides.server.message)\nmissing: \(phrase)") }
        #expect(sides.server.peerCertificate?.hasPrefix("CN=") == true, "\(String(describing: sides.server.peerCertificate))")
        #expect(sides.client.reason == reason, "\(sides.client)")
        #expect(sides.client.refusedByPeer)
        #expect(sides.client.code == .refusedByPeer)
        for phrase in clientSays { #expect(sides.client.message.contains(phrase), "client: \(sides.client.message)\nmissing: \(phrase)") }
    }

    @Test("a refused server certificate: the client names it, the cause and the fix; the server hears its own certificate was refused",
          arguments: ["expired", "unknown CA", "no cascade SAN"])
    func refusedServer(_ kind: String) async throws {
        let pki = try TestPKI()
        let rogue = try TestPKI(name: "rogue CA")
        let server: TLSConfiguration
        let reason: TLSError.Reason
        let clientSays: [String]
        let serverSays: [String]
        switch kind {
        case "expired":
            server = try pki.configuration(uri: "cascade://coordinator/main", validFrom: Self.now - 86_400 * 40, validUntil: Self.now - 86_400 * 3)
            reason = .expired
            clientSays = ["the server's certificate (subject CN=coordinator-main, cascade://coordinator/main) expired at ", "(3 days ago)", "renew it"]
            serverSays = ["the client refused this program's certificate \(server.certificateChainFile)", "it expired at ", "renew it"]
        case "unknown CA":
            server = try rogue.configuration(uri: "cascade://coordinator/main")
            reason = .unknownCA
            clientSays = ["the server's certificate (subject CN=coordinator-main, cascade://coordinator/main), issued by CN=rogue CA, is not from a CA in the trust bundle \(pki.caFile)"]
            serverSays = ["the client does not trust the CA that issued this program's certificate \(server.certificateChainFile) (subject CN=coordinator-main, cascade://coordinator/main): CN=rogue CA"]
        default:
            server = try pki.configuration(uri: nil, name: "anonymous-server")
            reason = .noIdentity
            clientSays = ["the server's certificate (subject CN=anonymous-server) has no cascade://<role>/<id> URI"]
            serverSays = ["the client refused this program's certificate \(server.certificateChainFile) (subject CN=anonymous-server): it has no cascade://<role>/<id> URI"]
        }
        let sides = try await refusal(server: server, client: pki.configuration(uri: "cascade://agent/a1"))
        #expect(sides.client.reason == reason, "\(sides.client)")
        #expect(!sides.client.refusedByPeer)
        for phrase in clientSays { #expect(sides.client.message.contains(phrase), "client: \(sides.client.message)\nmissing: \(phrase)") }
        #expect(sides.server.reason == reason, "\(sides.server)")
        #expect(sides.server.refusedByPeer)
        for phrase in serverSays { #expect(sides.server.message.contains(phrase), "server: \(sides.server.message)\nmissing: \(phrase)") }
    }

    @Test("a private key that does not match the certificate is named as such (not as an encrypted key), and so is a file holding no key")
    func mismatchedKey() throws {
        let pki = try TestPKI()
        var configuration = try pki.configuration(uri: "cascade://operator/alice")
        let other = try pki.configuration(uri: "cascade://operator/bob")
        configuration.privateKeyFile = other.privateKeyFile
        let error = #expect(throws: TLSError.self) { _ = try TLSContext(configuration: configuration, side: .client) }
        let message = error?.message ?? ""
        #expect(error?.code == .configuration)
        #expect(message.contains("the private key \(other.privateKeyFile) does not match the certificate \(configuration.certificateChainFile) (cascade://operator/alice)"), "\(message)")
        #expect(message.contains("give the key that was made with this certificate"), "\(message)")
        #expect(!message.contains("encrypted"), "\(message)")

        configuration.privateKeyFile = configuration.certificateChainFile
        let notAKey = #expect(throws: TLSError.self) { _ = try TLSContext(configuration: configuration, side: .server) }
        #expect(notAKey?.message.contains("\(configuration.certificateChainFile) holds no PEM private key") == true, "\(String(describing: notAKey))")
    }

    @Test("host names are resolved with getaddrinfo; a literal IP is taken as it is; a name that does not resolve is named with the resolver's reason")
    func resolving() throws {
        let resolved = try SocketAddress.lookUp("localhost", port: 7400)
        #expect(["127.0.0.1", "::1"].contains(resolved.ipString), "\(resolved)")
        #expect(resolved.port == 7400)
        #expect(try SocketAddress(resolving: "localhost:9") == SocketAddress(ip: "127.0.0.1", port: 9))
        #expect(try SocketAddress(resolving: "10.1.2.3", defaultPort: 7400) == SocketAddress(ip: "10.1.2.3", port: 7400))
        #expect(try SocketAddress(resolving: "[fd00::5]:7401") == SocketAddress(ip: "fd00::5", port: 7401))
        let error = #expect(throws: NetError.self) { _ = try SocketAddress(resolving: "no-such-host.invalid:7400") }
        #expect(error?.message.hasPrefix("cannot resolve the host name \"no-such-host.invalid\" (") == true, "\(String(describing: error))")
        #expect(throws: NetError.self) { _ = try SocketAddress(resolving: "localhost:http") }
    }
}
