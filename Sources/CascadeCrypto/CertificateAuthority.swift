import COpenSSL
import CCascadeShims

/// What a leaf certificate should say about its holder.
public struct CertificateRequest: Sendable {
    public var commonName: String
    public var uris: [String]
    public var dnsNames: [String]
    public var ipAddresses: [String]
    /// Validity as Unix seconds.
    public var notBefore: Int64
    public var notAfter: Int64
    /// The extended key usages, in OpenSSL's notation (tls.md §4: both, for every role that
    /// serves; tests narrow it to show what a peer refuses).
    public var extendedKeyUsage: String

    public init(
        commonName: String, uris: [String] = [], dnsNames: [String] = [], ipAddresses: [String] = [],
        notBefore: Int64, notAfter: Int64, extendedKeyUsage: String = "serverAuth,clientAuth"
    ) {
        self.commonName = commonName
        self.uris = uris
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.extendedKeyUsage = extendedKeyUsage
    }
}

/// A certificate and its private key, both PEM.
public struct IssuedCertificate: Sendable {
    public let certificatePEM: String
    public let privateKeyPEM: String
}

/// A small certificate authority (EC P-256, SHA-256) for development fleets and tests.
/// Production fleets use their own PKI; see certs/README.md.
public struct CertificateAuthority: Sendable {
    public let certificatePEM: String
    private let privateKeyPEM: String

    /// Makes a new self-signed CA valid from an hour ago for `lifetime` seconds.
    public init(commonName: String, now: Int64, lifetime: Int64 = 30 * 86_400) throws(CryptoError) {
        let key = try PKey.generateECP256()
        let certificate = try X509Builder.build(
            commonName: commonName, publicKey: key, issuer: nil, issuerKey: key,
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
            ],
            notBefore: now - 3600, notAfter: now + lifetime)
        defer { X509_free(certificate) }
        self.certificatePEM = try MemoryBIO.writing { PEM_write_bio_X509($0, certificate) == 1 }
        self.privateKeyPEM = try key.privateKeyPEM()
    }

    /// Issues a leaf certificate (for TLS server and client use) with a fresh EC P-256 key.
    public func issue(_ request: CertificateRequest) throws(CryptoError) -> IssuedCertificate {
        let caKey = try PKey.parsePrivateKeyPEM(privateKeyPEM)
        let caCert: OpaquePointer? = MemoryBIO.withReadable(certificatePEM) { PEM_read_bio_X509($0, nil, nil, nil) }
        guard let caCert else { throw .openSSL("reading the CA certificate failed") }
        defer { X509_free(caCert) }

        var names = request.uris.map { "URI:\($0)" }
        names += request.dnsNames.map { "DNS:\($0)" }
        names += request.ipAddresses.map { "IP:\($0)" }
        var extensions: [(Int32, String)] = [
            (NID_basic_constraints, "critical,CA:FALSE"),
            (NID_key_usage, "critical,digitalSignature,keyEncipherment"),
            (NID_ext_key_usage, request.extendedKeyUsage),
        ]
        if !names.isEmpty { extensions.append((NID_subject_alt_name, names.joined(separator: ","))) }

        let key = try PKey.generateECP256()
        let certificate = try X509Builder.build(
            commonName: request.commonName, publicKey: key, issuer: caCert, issuerKey: caKey,
            extensions: extensions, notBefore: request.notBefore, notAfter: request.notAfter)
        defer { X509_free(certificate) }
        return IssuedCertificate(
            certificatePEM: try MemoryBIO.writing { PEM_write_bio_X509($0, certificate) == 1 },
            privateKeyPEM: try key.privateKeyPEM())
    }
}

enum X509Builder {
    /// MBSTRING_ASC: a macro built from another macro, so spelled out here.
    private static let asciiString: Int32 = 0x1001

    /// Returns a signed X509 the caller frees. `issuer == nil` makes it self-signed.
    static func build(
        commonName: String, publicKey: PKey, issuer: OpaquePointer?, issuerKey: PKey,
        extensions: [(Int32, String)], notBefore: Int64, notAfter: Int64
    ) throws(CryptoError) -> OpaquePointer {
        OpenSSLErrors.clear()
        guard let certificate = X509_new() else { throw .openSSL("X509_new failed") }
        var ok = X509_set_version(certificate, 2) == 1
            && ASN1_INTEGER_set_uint64(X509_get_serialNumber(certificate), SecureRandom.uint64() >> 1) == 1
            && ASN1_TIME_set(X509_getm_notBefore(certificate), time_t(notBefore)) != nil
            && ASN1_TIME_set(X509_getm_notAfter(certificate), time_t(notAfter)) != nil
            && X509_set_pubkey(certificate, publicKey.pointer) == 1
        if ok, let subject = X509_get_subject_name(certificate) {
            ok = X509_NAME_add_entry_by_txt(subject, "CN", asciiString, commonName, -1, -1, 0) == 1
        }
        ok = ok && X509_set_issuer_name(certificate, X509_get_subject_name(issuer ?? certificate)) == 1
        for (nid, value) in extensions where ok {
            var context = X509V3_CTX()
            X509V3_set_ctx(&context, issuer ?? certificate, certificate, nil, nil, 0)
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else { ok = false; break }
            ok = X509_add_ext(certificate, ext, -1) == 1
            X509_EXTENSION_free(ext)
        }
        ok = ok && X509_sign(certificate, issuerKey.pointer, EVP_sha256()) > 0
        guard ok else {
            X509_free(certificate)
            throw .openSSL("building the certificate for \(commonName) failed")
        }
        return certificate
    }
}
