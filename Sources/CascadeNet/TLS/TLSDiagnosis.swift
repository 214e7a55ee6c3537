import COpenSSL
import CCascadeShims
import CascadeLog
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a refusal's sentence says about a certificate: who it names, who issued it, when it is
/// valid, its cascade:// URIs and the TLS uses it allows.
public struct CertificateSummary: Sendable, Hashable {
    /// RFC 2253 ("CN=alice,O=Cascade"); control characters escaped by OpenSSL.
    public var subject: String
    public var issuer: String
    /// Unix seconds.
    public var notBefore: Int64?
    public var notAfter: Int64?
    /// The subjectAltName URIs that start with `cascade://`.
    public var cascadeURIs: [String]
    /// nil when the certificate has no extended key usage (any use).
    public var extendedKeyUsage: ExtendedKeyUsage?

    public struct ExtendedKeyUsage: Sendable, Hashable {
        public var serverAuth: Bool
        public var clientAuth: Bool
    }

    init(_ certificate: OpaquePointer) {
        subject = Self.name(X509_get_subject_name(certificate))
        issuer = Self.name(X509_get_issuer_name(certificate))
        var seconds: Int64 = 0
        notBefore = cascade_ASN1_TIME_unix(X509_get0_notBefore(certificate), &seconds) == 1 ? seconds : nil
        notAfter = cascade_ASN1_TIME_unix(X509_get0_notAfter(certificate), &seconds) == 1 ? seconds : nil
        cascadeURIs = CertificateIdentity.uriNames(of: certificate).filter { $0.hasPrefix("cascade://") }
        var server: Int32 = 0
        var client: Int32 = 0
        extendedKeyUsage = cascade_X509_extended_key_usage(certificate, &server, &client) == 1
            ? ExtendedKeyUsage(serverAuth: server != 0, clientAuth: client != 0) : nil
    }

    private static func name(_ name: OpaquePointer?) -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        let length = cascade_X509_NAME_rfc2253(name, &buffer, Int32(buffer.count))
        return String(decoding: buffer.prefix(Int(max(0, length))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "subject CN=alice, cascade://operator/alice", safe to print on a terminal.
    public var label: String {
        LogEncoding.escapedText((["subject \(subject.isEmpty ? "(empty)" : subject)"] + cascadeURIs).joined(separator: ", "))
    }

    /// What is wrong with its identity (tls.md §4.2), or nil when it has exactly one valid URI.
    var identityProblem: (reason: TLSError.Reason, text: String)? {
        switch cascadeURIs.count {
        case 0:
            return (.noIdentity, "has no cascade://<role>/<id> URI in its subjectAltName")
        case 1:
            if (try? PeerIdentity(uri: cascadeURIs[0])) != nil { return nil }
            return (.invalidIdentity, "has the URI \"\(LogEncoding.escapedText(cascadeURIs[0]))\", which is not cascade://<coordinator|agent|operator>/<id> with an id of 1-64 of A-Z a-z 0-9 . _ -")
        default:
            let list = cascadeURIs.map { LogEncoding.escapedText($0) }.joined(separator: ", ")
            return (.severalIdentities, "has \(cascadeURIs.count) cascade:// URIs (\(list)); exactly one is allowed")
        }
    }
}

/// The first failure the verify callback saw in a handshake, kept for the error's sentence.
struct VerifyFailure: Sendable {
    /// X509_V_ERR_*.
    var error: Int32
    var depth: Int32
    /// The peer's own certificate, and the certificate of the chain the error is about.
    var leaf: CertificateSummary?
    var failing: CertificateSummary?
}

/// What a connection's OpenSSL callbacks need: where a new session goes (clients), this side's
/// files for sentences, and the verify callback's findings. The `SSL*`'s app data points here.
final class ConnectionNotes: Sendable {
    let session: SessionSink?
    let side: TLSContext.Side
    let configuration: TLSConfiguration
    let verifyFailure = Mutex<VerifyFailure?>(nil)

    init(session: SessionSink?, side: TLSContext.Side, configuration: TLSConfiguration) {
        self.session = session
        self.side = side
        self.configuration = configuration
    }

    static func of(_ ssl: OpaquePointer?) -> ConnectionNotes? {
        guard let ssl, let raw = cascade_SSL_get_app_data(ssl) else { return nil }
        return Unmanaged<ConnectionNotes>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Keeps the first failure of the chain being verified in `store`.
    func record(_ store: OpaquePointer) {
        let error = X509_STORE_CTX_get_error(store)
        let depth = X509_STORE_CTX_get_error_depth(store)
        let leaf = X509_STORE_CTX_get0_cert(store).map(CertificateSummary.init)
        let failing = X509_STORE_CTX_get_current_cert(store).map(CertificateSummary.init)
        verifyFailure.withLock { recorded in
            if recorded == nil { recorded = VerifyFailure(error: error, depth: depth, leaf: leaf, failing: failing) }
        }
    }
}

/// The sentences of refused handshakes: what was refused, why, and what fixes it (README
/// "When TLS fails"). Both sides use them: the side that refused (in its log) and the side that
/// was refused (from the alert it got, and what it knows of its own certificate).
enum TLSDiagnosis {
    static let renew = "renew it: certs/make-dev-certs.sh makes new development certificates; in production, have the fleet CA issue a new one"

    /// "the client" or "the server", seen from `side`.
    static func peer(of side: TLSContext.Side) -> String { side == .server ? "the client" : "the server" }

    /// This side refused the peer's certificate (the verify callback's finding).
    static func refusedPeer(_ failure: VerifyFailure, notes: ConnectionNotes, openSSL: String) -> TLSError {
        let peer = peer(of: notes.side)
        let leaf = failure.leaf
        let certificate = "\(peer)'s certificate (\(leaf?.label ?? "unreadable"))"
        let detail = String(cString: X509_verify_cert_error_string(Int(failure.error)))
        let peerCertificate = leaf.map { summary in ([summary.subject] + summary.cascadeURIs).joined(separator: "; ") }
        func refusal(_ reason: TLSError.Reason, _ text: String, code: TLSError.Code = .peerCertificate) -> TLSError {
            TLSError(code, "\(text) (OpenSSL: \(detail))", reason: reason, peerCertificate: peerCertificate)
        }
        switch failure.error {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            guard failure.depth == 0 else {
                return refusal(.expired, "the CA certificate \(failure.failing?.label ?? "") in \(peer)'s chain \(expiry(failure.failing)); renew the CA and reissue the certificates it signed")
            }
            return refusal(.expired, "\(certificate) \(expiry(leaf)); \(renew)")
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return refusal(.notYetValid, "\(certificate) \(notYet(failure.depth == 0 ? leaf : failure.failing)); check the clocks of both hosts (date -u), or wait until then")
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
             X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_SIGNATURE_FAILURE:
            let issuer = LogEncoding.escapedText(leaf?.issuer ?? "unknown")
            return refusal(.unknownCA, "\(certificate), issued by \(issuer), is not from a CA in the trust bundle \(notes.configuration.trustRootsFile); give \(peer) a certificate from the fleet CA, or check that \(notes.configuration.trustRootsFile) holds the fleet CA")
        case X509_V_ERR_INVALID_PURPOSE:
            let use = notes.side == .server ? "clientAuth" : "serverAuth"
            let role = notes.side == .server ? "client" : "server"
            return refusal(.wrongPurpose, "\(certificate) may not be used by a TLS \(role): its extended key usage lacks \(use); reissue it with extendedKeyUsage \(use) (agents need serverAuth and clientAuth)")
        case X509_V_ERR_CERT_REJECTED:
            // Only verifyIdentity rejects a certificate this way.
            let problem = leaf?.identityProblem ?? (.noIdentity, "has no usable cascade:// identity")
            return refusal(problem.reason, "\(certificate) \(problem.text); \(identityRule)", code: .identity)
        default:
            return refusal(.badCertificate, "\(certificate) was rejected")
        }
    }

    static let identityRule = "a Cascade certificate carries exactly one cascade://<role>/<id> URI in its subjectAltName (role coordinator, agent or operator; id 1-64 of A-Z a-z 0-9 . _ -): reissue it (certs/make-dev-certs.sh shows how)"

    /// The peer refused this side: `alert` is what it sent; this side's own certificate says why.
    static func refusedByPeer(alert: UInt8, local: CertificateSummary?, notes: ConnectionNotes, openSSL: String) -> TLSError {
        let peer = peer(of: notes.side)
        let ours = "this program's certificate \(notes.configuration.certificateChainFile)" + (local.map { " (\($0.label))" } ?? "")
        let now = Int64(time(nil))
        func refusal(_ reason: TLSError.Reason, _ text: String) -> TLSError {
            TLSError(.refusedByPeer, "\(text) (OpenSSL: \(openSSL))", reason: reason, refusedByPeer: true, alert: alert)
        }
        switch alert {
        case 45:  // certificate_expired
            if let notAfter = local?.notAfter, notAfter <= now {
                return refusal(.expired, "\(peer) refused \(ours): it \(expiry(local)); \(renew)")
            }
            return refusal(.expired, "\(peer) says \(ours) has expired, but by this host's clock it is valid until \(rfc3339(local?.notAfter)); check the clock of \(peer)'s host")
        case 42:  // bad_certificate: not yet valid, no identity, or another flaw
            if let notBefore = local?.notBefore, notBefore > now {
                return refusal(.notYetValid, "\(peer) refused \(ours): it \(notYet(local)); check the clocks of both hosts (date -u), or wait until then")
            }
            if let problem = local?.identityProblem {
                return refusal(problem.reason, "\(peer) refused \(ours): it \(problem.text); \(identityRule)")
            }
            return refusal(.badCertificate, "\(peer) refused \(ours) as a bad certificate; check that it is valid now by \(peer)'s clock too and that the fleet CA issued it for this program")
        case 48:  // unknown_ca
            let issuer = LogEncoding.escapedText(local?.issuer ?? "unknown")
            return refusal(.unknownCA, "\(peer) does not trust the CA that issued \(ours): \(issuer); use a certificate from the fleet CA that \(peer) trusts")
        case 43:  // unsupported_certificate
            let use = notes.side == .client ? "clientAuth" : "serverAuth"
            let role = notes.side == .client ? "client" : "server"
            return refusal(.wrongPurpose, "\(peer) refused \(ours) as unsuitable for a TLS \(role): its extended key usage must include \(use)")
        case 116:  // certificate_required
            return refusal(.noCertificate, "\(peer) requires a client certificate and got none")
        case 70:  // protocol_version
            return refusal(.protocolVersion, "\(peer) does not accept TLS 1.3 as this program offers it")
        case 40:  // handshake_failure
            return refusal(.noSharedParameters, "\(peer) found no cipher suite or key-exchange group in common with this program (TLS 1.3: \(TLSContext.cipherSuites); groups \(TLSContext.groups))")
        default:
            return refusal(.other, "\(peer) refused the TLS connection with alert \(alert)")
        }
    }

    /// "expired at 2026-01-01T00:00:00Z (3 days ago)".
    static func expiry(_ certificate: CertificateSummary?) -> String {
        "expired at \(rfc3339(certificate?.notAfter))\(relative(certificate?.notAfter))"
    }

    /// "is not valid until 2026-01-01T00:00:00Z (in 2 hours)".
    static func notYet(_ certificate: CertificateSummary?) -> String {
        "is not valid until \(rfc3339(certificate?.notBefore))\(relative(certificate?.notBefore))"
    }

    static func rfc3339(_ seconds: Int64?) -> String {
        guard let seconds else { return "an unreadable time" }
        let text = LogEncoding.timestamp(seconds * 1000)
        return text.hasSuffix(".000Z") ? String(text.dropLast(5)) + "Z" : text
    }

    /// " (3 days ago)" or " (in 2 hours)".
    static func relative(_ seconds: Int64?) -> String {
        guard let seconds else { return "" }
        let delta = seconds - Int64(time(nil))
        let magnitude = abs(delta)
        func rounded(_ unit: Int64) -> Int64 { (magnitude + unit / 2) / unit }
        let amount: String
        switch magnitude {
        case ..<90: amount = "\(magnitude) seconds"
        case ..<5400: amount = "\(rounded(60)) minutes"
        case ..<(36 * 3600): amount = "\(rounded(3600)) hours"
        default: amount = "\(rounded(86_400)) days"
        }
        return delta < 0 ? " (\(amount) ago)" : " (in \(amount))"
    }
}
