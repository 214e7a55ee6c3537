/// The verified facts about where a peer is: the TCP source address this side sees and the
/// IP address SANs of its verified certificate. Unlike anything the peer says in a message,
/// neither can be chosen by the peer (the certificate's are signed by the CA; the source is
/// where replies go).
public struct PeerEndpoint: Hashable, Sendable {
    /// The connection's source; nil when the socket is gone or on in-memory transports.
    public let address: SocketAddress?
    /// The certificate's IP address SANs, as canonical text; often empty.
    public let certificateIPs: [String]

    public init(address: SocketAddress?, certificateIPs: [String] = []) {
        self.address = address
        self.certificateIPs = certificateIPs
    }

    /// The source address as text, with an IPv4-mapped IPv6 source (`::ffff:10.1.2.3`, from a
    /// dual-stack listener) given as the IPv4 address it is.
    public var sourceIP: String? {
        guard let address else { return nil }
        let bytes = address.ipBytes
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF,
           let v4 = try? SocketAddress(ipBytes: Array(bytes[12..<16]), port: address.port) {
            return v4.ipString
        }
        return address.ipString
    }
}
