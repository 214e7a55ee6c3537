/// What a TLS endpoint needs: the fleet CA, its own certificate chain and key (PEM files).
/// Every connection is TLS 1.3 with mutual authentication; that is not configurable.
public struct TLSConfiguration: Sendable {
    /// PEM bundle of the CA certificates a peer's chain must verify against.
    public var trustRootsFile: String
    /// PEM: this endpoint's certificate, then any intermediates.
    public var certificateChainFile: String
    public var privateKeyFile: String
    /// A peer that has not finished the handshake by then is disconnected (slowloris).
    public var handshakeTimeout: Duration
    /// Server only: the 80 bytes (`TLSContext.ticketKeyLength`) that encrypt session tickets.
    /// Kept across restarts, they let clients resume their sessions with a restarted server
    /// instead of each paying a full handshake; nil means fresh random keys per process.
    public var sessionTicketKeys: [UInt8]?

    public init(
        trustRootsFile: String, certificateChainFile: String, privateKeyFile: String,
        handshakeTimeout: Duration = .seconds(10)
    ) {
        self.trustRootsFile = trustRootsFile
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.handshakeTimeout = handshakeTimeout
    }
}
