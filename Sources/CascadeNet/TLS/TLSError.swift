/// A TLS failure: configuration, handshake, peer verification or the record layer.
public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
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
        /// The peer closed the TCP connection without a TLS close_notify.
        public static let unexpectedEOF = Code(name: "unexpected eof")
        /// A record-layer failure after the handshake.
        public static let protocolError = Code(name: "protocol")
        public var description: String { name }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
