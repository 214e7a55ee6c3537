import COpenSSL
import CCascadeShims
import CascadeCrypto
#if canImport(Glibc)
import Glibc
#endif

/// An OpenSSL `SSL_CTX` set up for Cascade: TLS 1.3 only, peer certificate required and
/// verified against the fleet CA, on either side.
///
/// `@unchecked Sendable`: the context is fully configured in `init` and never mutated
/// afterwards; OpenSSL locks the state it shares between connections (reference counts,
/// the session cache), so creating connections from several threads is safe.
public final class TLSContext: @unchecked Sendable {
    public enum Side: Sendable { case client, server }

    let context: OpaquePointer
    public let side: Side
    /// Client: the latest session per server address, for TLS 1.3 resumption.
    let sessions = SessionStore()
    public let configuration: TLSConfiguration

    public init(configuration: TLSConfiguration, side: Side) throws(TLSError) {
        OpenSSLErrors.clear()
        guard let context = SSL_CTX_new(side == .server ? TLS_server_method() : TLS_client_method()) else {
            throw TLSError(.configuration, "SSL_CTX_new failed: \(OpenSSLErrors.drain())")
        }
        self.context = context
        self.side = side
        self.configuration = configuration

        func fail(_ what: String) -> TLSError {
            TLSError(.configuration, "\(what): \(OpenSSLErrors.drain())")
        }
        guard cascade_SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION) == 1,
              cascade_SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION) == 1
        else { throw fail("restricting the context to TLS 1.3 failed") }
        // The profile of tls.md §2, fixed here rather than left to the host's OpenSSL build and
        // configuration: the three AEAD suites and the groups every TLS 1.3 stack has.
        guard SSL_CTX_set_ciphersuites(context, Self.cipherSuites) == 1,
              cascade_SSL_CTX_set1_groups_list(context, Self.groups) == 1
        else { throw fail("setting the TLS 1.3 cipher suites and groups failed") }
        _ = SSL_CTX_set_options(context, CASCADE_SSL_OP_NO_RENEGOTIATION | CASCADE_SSL_OP_NO_COMPRESSION)
        // Partial writes let a large write make progress record by record without blocking;
        // released buffers keep idle connections small (tens of thousands of idle agents).
        _ = cascade_SSL_CTX_set_mode(
            context,
            Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS))
        // Read ahead: one recv per many records rather than two per record. The buffer grows
        // to SSLStream.bulkReadBuffer only while a connection moves bulk data (see there).
        cascade_SSL_CTX_set_read_ahead(context, 1)

        // The identity is checked while the chain is verified, so a peer without one is refused
        // in the handshake with an alert (tls.md §5), not dropped silently afterwards.
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verifyIdentity)
        // A daemon must never stop at a terminal prompt for a key passphrase.
        cascade_SSL_CTX_refuse_passwords(context)
        guard SSL_CTX_load_verify_locations(context, configuration.trustRootsFile, nil) == 1 else {
            throw fail("loading the CA bundle \(configuration.trustRootsFile) failed")
        }
        guard SSL_CTX_use_certificate_chain_file(context, configuration.certificateChainFile) == 1 else {
            throw fail("loading the certificate chain \(configuration.certificateChainFile) failed")
        }
        try Self.usePrivateKey(configuration, in: context)
        if side == .client {
            // Sessions arrive after the handshake (TLS 1.3 tickets); we keep them ourselves.
            _ = cascade_SSL_CTX_set_session_cache_mode(context, Int(SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE))
            cascade_SSL_CTX_sess_set_new_cb(context, newSessionCallback)
        }
        if side == .server {
            // Required for resuming sessions that carry a client certificate.
            let sessionContext: [UInt8] = Array("cascade".utf8)
            _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
            if var keys = configuration.sessionTicketKeys {
                guard keys.count == Self.ticketKeyLength,
                      cascade_SSL_CTX_set_ticket_keys(context, &keys, Self.ticketKeyLength) == 1
                else { throw fail("setting the \(keys.count)-byte session ticket keys failed (they must be \(Self.ticketKeyLength) bytes)") }
            }
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// Loads the key and checks it against the certificate already loaded, so that each way
    /// this goes wrong gets its own sentence: unreadable, encrypted, not a key, another key.
    private static func usePrivateKey(_ configuration: TLSConfiguration, in context: OpaquePointer) throws(TLSError) {
        let path = configuration.privateKeyFile
        guard let bio = BIO_new_file(path, "r") else {
            OpenSSLErrors.clear()
            throw TLSError(.configuration, "cannot read the private key \(path): \(String(cString: strerror(errno)))")
        }
        // No passphrase callback: an encrypted key fails here instead of prompting.
        let key = PEM_read_bio_PrivateKey(bio, nil, cascade_no_password, nil)
        BIO_free(bio)
        guard let key else {
            let detail = OpenSSLErrors.drain()
            if Self.isEncryptedPEM(path) {
                throw TLSError(.configuration, "the private key \(path) is encrypted, and encrypted keys are not supported (a daemon must never stop at a passphrase prompt); "
                    + "decrypt it (openssl pkey -in \(path) -out PLAIN.key), keep the plain key mode 0600 and name that file instead")
            }
            throw TLSError(.configuration, "\(path) holds no PEM private key (OpenSSL: \(detail)); give the key file made with the certificate \(configuration.certificateChainFile)")
        }
        defer { EVP_PKEY_free(key) }
        if let certificate = SSL_CTX_get0_certificate(context), X509_check_private_key(certificate, key) != 1 {
            OpenSSLErrors.clear()
            let identity = (try? CertificateIdentity.peerIdentity(of: certificate, whose: "")).map { " (\($0.uri))" } ?? ""
            throw TLSError(.configuration, "the private key \(path) does not match the certificate \(configuration.certificateChainFile)\(identity): "
                + "it is the key of another certificate; give the key that was made with this certificate, or the certificate issued for this key")
        }
        guard SSL_CTX_use_PrivateKey(context, key) == 1 else {
            throw TLSError(.configuration, "loading the private key \(path) failed: \(OpenSSLErrors.drain())")
        }
    }

    /// Whether a PEM file's headers say it is encrypted (PKCS#8 or the traditional form).
    private static func isEncryptedPEM(_ path: String) -> Bool {
        guard let file = fopen(path, "r") else { return false }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = fread(&buffer, 1, buffer.count - 1, file)
        let text = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.contains("ENCRYPTED")
    }

    /// The identity this side presents: the `cascade://<role>/<id>` URI of its own certificate
    /// (`certificateChainFile`), so a program can refuse to run with another role's certificate
    /// instead of failing only when every peer refuses it.
    public var localIdentity: PeerIdentity {
        get throws(TLSError) {
            guard let certificate = SSL_CTX_get0_certificate(context) else {
                throw TLSError(.configuration, "\(configuration.certificateChainFile) holds no certificate")
            }
            return try CertificateIdentity.peerIdentity(of: certificate, whose: "the certificate \(configuration.certificateChainFile)")
        }
    }

    /// TLS 1.3 cipher suites, in order of preference (tls.md §2).
    public static let cipherSuites = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
    /// Key-exchange groups, in order of preference; a client sends a key share for the first.
    public static let groups = "X25519:P-256:P-384"

    /// Session ticket keys: a 16-byte name, a 32-byte HMAC key and a 32-byte AES key.
    public static let ticketKeyLength = 80

    /// Connects over TCP (optionally from `local`) and completes the TLS handshake.
    public func connect(
        to remote: SocketAddress, from local: SocketAddress? = nil, on loop: EventLoop = EventLoopGroup.shared.next()
    ) async throws -> TLSConnection {
        precondition(side == .client, "connect needs a client context")
        let what = "TLS connection to \(remote)"
        return try await withTimeout(configuration.handshakeTimeout, on: loop, what: what) {
            let socket = try await Socket.connect(to: remote, from: local, on: loop)
            return try await self.handshake(socket, what: what, sessionKey: remote.description)
        }
    }

    /// Completes the server side of the handshake on an accepted socket, within the
    /// handshake timeout. The socket is closed on failure.
    public func accept(_ socket: Socket) async throws -> TLSConnection {
        precondition(side == .server, "accept needs a server context")
        let what = "TLS handshake from \(socket.remoteAddress.map { "\($0)" } ?? "a peer")"
        do {
            return try await withTimeout(configuration.handshakeTimeout, on: socket.loop, what: what) {
                try await self.handshake(socket, what: what, sessionKey: nil)
            }
        } catch let error as TLSError {
            Self.closeAfterRefusal(socket)
            throw error
        } catch {
            socket.close()
            throw error
        }
    }

    /// After a refused handshake the alert is on its way, but a TLS 1.3 client writes its first
    /// records right after its Finished, before it can know. Closing with them unread would make
    /// the kernel answer with a reset, which can destroy the alert before the client reads it
    /// (and the client would say "connection reset" instead of why). So: FIN after the alert,
    /// then read and discard (at most 64 KiB, for at most 1 s) until the client closes.
    private static func closeAfterRefusal(_ socket: Socket) {
        Task(executorPreference: socket.loop) {
            socket.shutdownWrite()
            _ = try? await withTimeout(.seconds(1), on: socket.loop, what: "closing a refused TLS connection") {
                var discarded = 0
                while discarded < 64 * 1024 {
                    let bytes = try await socket.read(maxLength: 16 * 1024)
                    if bytes.isEmpty { break }
                    discarded += bytes.count
                }
            }
            socket.close()
        }
    }

    private func handshake(_ socket: Socket, what: String, sessionKey: String?) async throws -> TLSConnection {
        guard let ssl = SSL_new(context) else {
            throw TLSError(.configuration, "SSL_new failed: \(OpenSSLErrors.drain())")
        }
        // The callbacks (new sessions, verification) find what they need through the app data;
        // the stream keeps it alive as long as the SSL*.
        let notes = ConnectionNotes(
            session: sessionKey.map { SessionSink(key: $0, store: sessions) }, side: side, configuration: configuration)
        _ = cascade_SSL_set_app_data(ssl, Unmanaged.passUnretained(notes).toOpaque())
        if let sessionKey {
            sessions.withSession(for: sessionKey) { _ = SSL_set_session(ssl, $0) }
        }
        SSL_set_fd(ssl, socket.fd)
        if side == .server { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
        let stream = SSLStream(socket: socket, ssl: ssl, notes: notes)
        while true {
            switch stream.step({ SSL_do_handshake($0) }) {
            case .done:
                let peer = try stream.verifiedPeer(what: what)
                return TLSConnection(stream: stream, peer: peer.identity, certificateIPs: peer.ipAddresses)
            case .wantRead: try await socket.wait(for: .readable)
            case .wantWrite: try await socket.wait(for: .writable)
            case .closed:
                throw TLSError(.handshake, "\(what) failed: the peer closed the connection during the handshake", reason: .closed)
            case .failed(let error):
                var failure = error.prefixed("\(what) failed: ")
                if failure.reason == nil && (error.code == .unexpectedEOF || error.code == .protocolError) { failure.reason = .closed }
                throw failure
            }
        }
    }
}
