import CascadeAPI
import CascadeNet
import CascadeRPC

/// The address that decides an agent's cluster comes from verified facts only — its
/// connection's source or its certificate's IP SANs (services.md §3.1) — never from
/// `RegisterRequest.address`, which must agree with them or be left empty.
extension Coordinator {
    func placementAddress(claimed: String, endpoint: PeerEndpoint?, agentID: String) throws -> String {
        let claimedAddress: SocketAddress?
        if claimed.isEmpty || claimed == "0.0.0.0" || claimed == "::" {
            claimedAddress = nil  // "wherever I connect from"
        } else {
            do {
                claimedAddress = try SocketAddress(ip: claimed, port: 0)
            } catch {
                throw APIError.invalid("the address \"\(claimed.prefix(80))\" is not an IP address")
            }
        }
        // In-memory transports (tests of the service logic) have no socket to read it from.
        guard let endpoint else { return claimedAddress?.ipString ?? claimed }
        let certificate = endpoint.certificateIPs.compactMap { try? SocketAddress(ip: $0, port: 0) }
        let verified: SocketAddress
        switch configuration.placement {
        case .source:
            guard let text = endpoint.sourceIP, let source = try? SocketAddress(ip: text, port: 0) else {
                throw RPCError(.unavailable, "the source address of agent \(agentID)'s connection cannot be read")
            }
            if !certificate.isEmpty && !certificate.contains(source) {
                throw RPCError(.permissionDenied,
                    "agent \(agentID) connects from \(source.ipString), which is not among its certificate's addresses (\(endpoint.certificateIPs.joined(separator: ", ")))")
            }
            verified = source
        case .certificate:
            if let claimedAddress, certificate.contains(claimedAddress) {
                verified = claimedAddress
            } else if let only = certificate.first, certificate.count == 1 {
                verified = only
            } else {
                throw RPCError(.permissionDenied, certificate.isEmpty
                    ? "agent \(agentID)'s certificate has no IP address SAN, and this coordinator places agents by certificate"
                    : "agent \(agentID)'s certificate names several addresses (\(endpoint.certificateIPs.joined(separator: ", "))); register with one of them")
            }
        }
        if let claimedAddress, claimedAddress != verified {
            throw RPCError(.permissionDenied,
                "agent \(agentID) registered address \(claimedAddress.ipString), but its verified address is \(verified.ipString) (\(configuration.placement == .source ? "its connection's source" : "its certificate's IP SAN")); the cluster is decided by the verified address")
        }
        return verified.ipString
    }
}
