/// A TLS failure: configuration, handshake, peer verification or the record layer.
///
/// A refused handshake says why in `message`, naming the certificate, the cause and what fixes
/// it (README "When TLS fails"); `reason` is the same cause as a short word for logs, rate
/// limits and counters, and `refusedByPeer` says which side refused.
public struct TLSError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        /// Loading the CA, certificate or key failed.
        public static let configuration = Code(name: "configuration")
        /// The handshake failed (protocol version, alerts, no certificate from the peer...).
        public static let handshake = Code(name: "handshake")
        /// The peer's certificate did not verify against the fleet CA (expired, other CA...).
        public static let peerCertificate = Code(name: "peer certificate")
        /// The certificate verified but carries no usable cascade:// identity.
        public static let identity = Code(name: "identity")
        /// The peer refused this side's certificate (it sent an alert saying why).
        public static let refusedByPeer = Code(name: "refused by the peer")
        /// The peer closed the TCP connection without a TLS close_notify.
        public static let unexpectedEOF = Code(name: "unexpected eof")
        /// A record-layer failure after the handshake.
        public static let protocolError = Code(name: "protocol")
        public var description: String { name }
    }

    /// Why a handshake was refused, as one word (the `reason=` of a log line).
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        case expired
        case notYetValid = "not-yet-valid"
        case unknownCA = "unknown-ca"
        case noIdentity = "no-identity"
        case severalIdentities = "several-identities"
        case invalidIdentity = "invalid-identity"
        case wrongPurpose = "wrong-purpose"
        case badCertificate = "bad-certificate"
        case noCertificate = "no-certificate"
        case protocolVersion = "protocol-version"
        case noSharedParameters = "no-shared-parameters"
        case closed = "closed"
        case other
    }

    public let code: Code
    public let message: String
    /// Set for a refused handshake (either side's refusal).
    public var reason: Reason?
    /// True when the peer refused this side (its alert); false when this side refused the peer.
    public var refusedByPeer: Bool = false
    /// The alert the peer sent, if any (RFC 8446 §6: 42 bad_certificate, 45 certificate_expired...).
    public var alert: UInt8?
    /// The refused certificate's subject and identity, when this side verified it
    /// ("CN=alice; cascade://operator/alice").
    public var peerCertificate: String?
    /// The sentence without the context a layer put before it ("TLS connection to ... failed: "):
    /// the cause and the fix alone, for a program that names the peer its own way.
    public var explanation: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
        self.explanation = message
    }

    public init(_ code: Code, _ message: String, reason: Reason?, refusedByPeer: Bool = false, alert: UInt8? = nil, peerCertificate: String? = nil) {
        self.code = code
        self.message = message
        self.reason = reason
        self.refusedByPeer = refusedByPeer
        self.alert = alert
        self.peerCertificate = peerCertificate
        self.explanation = message
    }

    /// The same error with `prefix` before its message ("TLS handshake from 10.0.0.7:5123 failed: ").
    func prefixed(_ prefix: String) -> TLSError {
        var copy = TLSError(code, prefix + message, reason: reason, refusedByPeer: refusedByPeer, alert: alert, peerCertificate: peerCertificate)
        copy.explanation = explanation
        return copy
    }

    public var description: String { message }
}
