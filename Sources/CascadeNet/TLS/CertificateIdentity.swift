import COpenSSL
import CCascadeShims

/// Reads the cascade:// identity out of an X509 certificate's subjectAltName.
enum CertificateIdentity {
    /// Exactly one `cascade://` URI SAN is required; zero or several is an error.
    static func peerIdentity(of certificate: OpaquePointer) throws(TLSError) -> PeerIdentity {
        let uris = uriNames(of: certificate).filter { $0.hasPrefix("cascade://") }
        guard let uri = uris.first else {
            throw TLSError(.identity, "the peer's certificate has no cascade://<role>/<id> URI in its subjectAltName")
        }
        guard uris.count == 1 else {
            throw TLSError(.identity, "the peer's certificate has \(uris.count) cascade:// URIs; exactly one is allowed")
        }
        return try PeerIdentity(uri: uri)
    }

    /// The IP address SANs of a certificate, as canonical text ("127.0.1.5", "fd00::1").
    static func ipAddresses(of certificate: OpaquePointer) -> [String] {
        guard let raw = X509_get_ext_d2i(certificate, NID_subject_alt_name, nil, nil) else { return [] }
        let names = OpaquePointer(raw)
        defer { cascade_general_names_free(names) }
        var result: [String] = []
        for index in 0..<cascade_general_names_count(names) {
            var data: UnsafePointer<UInt8>?
            var length: Int32 = 0
            if cascade_general_names_ip(names, index, &data, &length) == 1, let data, length == 4 || length == 16,
               let address = try? SocketAddress(ipBytes: Array(UnsafeBufferPointer(start: data, count: Int(length))), port: 0) {
                result.append(address.ipString)
            }
        }
        return result
    }

    static func uriNames(of certificate: OpaquePointer) -> [String] {
        guard let raw = X509_get_ext_d2i(certificate, NID_subject_alt_name, nil, nil) else { return [] }
        let names = OpaquePointer(raw)
        defer { cascade_general_names_free(names) }
        var result: [String] = []
        for index in 0..<cascade_general_names_count(names) {
            var data: UnsafePointer<UInt8>?
            var length: Int32 = 0
            if cascade_general_names_uri(names, index, &data, &length) == 1, let data, length > 0 {
                result.append(String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self))
            }
        }
        return result
    }
}
