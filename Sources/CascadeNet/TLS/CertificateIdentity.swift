import COpenSSL
import CCascadeShims

/// Reads the cascade:// identity out of an X509 certificate's subjectAltName.
enum CertificateIdentity {
    /// Exactly one `cascade://` URI SAN is required; zero or several is an error. `whose`
    /// names the certificate in the error ("the peer's certificate").
    static func peerIdentity(of certificate: OpaquePointer, whose: String = "the peer's certificate") throws(TLSError) -> PeerIdentity {
        let uris = uriNames(of: certificate).filter { $0.hasPrefix("cascade://") }
        guard let uri = uris.first else {
            throw TLSError(.identity, "\(whose) has no cascade://<role>/<id> URI in its subjectAltName")
        }
        guard uris.count == 1 else {
            throw TLSError(.identity, "\(whose) has \(uris.count) cascade:// URIs; exactly one is allowed")
        }
        return try PeerIdentity(uri: uri)
    }

    /// The IP address SANs of a certificate, as canonical text ("127.0.1.5", "fd00::1").
    static func ipAddresses(of certificate: OpaquePointer) -> [String] {
        subjectAltNames(of: certificate, cascade_general_names_ip).compactMap { bytes in
            guard bytes.count == 4 || bytes.count == 16 else { return nil }
            return try? SocketAddress(ipBytes: bytes, port: 0).ipString
        }
    }

    static func uriNames(of certificate: OpaquePointer) -> [String] {
        subjectAltNames(of: certificate, cascade_general_names_uri).filter { !$0.isEmpty }.map { String(decoding: $0, as: UTF8.self) }
    }

    /// The raw bytes of every subjectAltName entry that `read` recognises (one shim per type).
    private static func subjectAltNames(
        of certificate: OpaquePointer,
        _ read: (OpaquePointer?, Int32, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<Int32>?) -> Int32
    ) -> [[UInt8]] {
        guard let raw = X509_get_ext_d2i(certificate, NID_subject_alt_name, nil, nil) else { return [] }
        let names = OpaquePointer(raw)
        defer { cascade_general_names_free(names) }
        var result: [[UInt8]] = []
        for index in 0..<cascade_general_names_count(names) {
            var data: UnsafePointer<UInt8>?
            var length: Int32 = 0
            if read(names, index, &data, &length) == 1, let data, length >= 0 {
                result.append(Array(UnsafeBufferPointer(start: data, count: Int(length))))
            }
        }
        return result
    }
}

/// OpenSSL's verify callback: after OpenSSL accepted the chain, the leaf must carry exactly one
/// valid `cascade://<role>/<id>` URI; otherwise the chain is rejected with
/// X509_V_ERR_CERT_REJECTED, which OpenSSL answers with a bad_certificate alert. (The identity
/// is read again from the verified certificate after the handshake: this only refuses early.)
/// The first failure (OpenSSL's or the identity's) is noted for the error's sentence.
let verifyIdentity: @convention(c) (Int32, OpaquePointer?) -> Int32 = { preverified, store in
    guard let store else { return preverified == 1 ? 1 : 0 }
    guard preverified == 1 else {
        ConnectionNotes.of(cascade_X509_STORE_CTX_get_ssl(store))?.record(store)
        return 0
    }
    guard X509_STORE_CTX_get_error_depth(store) == 0, let leaf = X509_STORE_CTX_get_current_cert(store) else { return 1 }
    do {
        _ = try CertificateIdentity.peerIdentity(of: leaf)
        return 1
    } catch {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED)
        ConnectionNotes.of(cascade_X509_STORE_CTX_get_ssl(store))?.record(store)
        return 0
    }
}
