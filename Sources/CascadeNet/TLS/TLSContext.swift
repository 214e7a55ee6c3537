import COpenSSL
import CCascadeShims
import CascadeCrypto

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
        guard SSL_CTX_use_PrivateKey_file(context, configuration.privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            throw fail("loading the private key \(configuration.privateKeyFile) failed (encrypted keys are not supported)")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw fail("the private key \(configuration.privateKeyFile) does not match the certificate")
        }
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
        } catch {
            socket.close()
            throw error
        }
    }

    private func handshake(_ socket: Socket, what: String, sessionKey: String?) async throws -> TLSConnection {
        guard let ssl = SSL_new(context) else {
            throw TLSError(.configuration, "SSL_new failed: \(OpenSSLErrors.drain())")
        }
        var sink: SessionSink?
        if let sessionKey {
            let made = SessionSink(key: sessionKey, store: sessions)
            sink = made
            _ = cascade_SSL_set_app_data(ssl, Unmanaged.passUnretained(made).toOpaque())
            sessions.withSession(for: sessionKey) { _ = SSL_set_session(ssl, $0) }
        }
        SSL_set_fd(ssl, socket.fd)
        if side == .server { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
        let stream = SSLStream(socket: socket, ssl: ssl, sessionSink: sink)
        while true {
            switch stream.step({ SSL_do_handshake($0) }) {
            case .done:
                let peer = try stream.verifiedPeer(what: what)
                return TLSConnection(stream: stream, peer: peer.identity, certificateIPs: peer.ipAddresses)
            case .wantRead: try await socket.wait(for: .readable)
            case .wantWrite: try await socket.wait(for: .writable)
            case .closed:
                throw TLSError(.handshake, "\(what) failed: the peer closed the connection during the handshake")
            case .failed(let error):
                throw TLSError(error.code, "\(what) failed: \(error.message)")
            }
        }
    }
}
