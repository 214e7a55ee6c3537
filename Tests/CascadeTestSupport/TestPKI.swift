public import CascadeCrypto
public import CascadeNet
import Foundation

/// Certificates made at test time (never committed, never expiring in CI): a fleet CA and
/// leaves for any identity, written as PEM files in a temporary directory.
public final class TestPKI: Sendable {
    public let directory: TemporaryDirectory
    public let authority: CertificateAuthority
    public let caFile: String

    public init(name: String = "test CA") throws {
        directory = try TemporaryDirectory(prefix: "cascade-pki")
        authority = try CertificateAuthority(commonName: name, now: Self.now)
        caFile = directory.file("ca.pem")
        try authority.certificatePEM.write(toFile: caFile, atomically: true, encoding: .utf8)
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    /// Issues a certificate for `uri` (e.g. "cascade://agent/a1") and returns a TLS
    /// configuration that uses it and trusts this CA.
    public func configuration(
        uri: String?, name: String? = nil, ipAddresses: [String] = ["127.0.0.1"],
        validFrom: Int64? = nil, validUntil: Int64? = nil, trusting otherCA: String? = nil,
        handshakeTimeout: Duration = .seconds(10), extraURIs: [String] = [], dnsNames: [String] = [],
        extendedKeyUsage: String = "serverAuth,clientAuth"
    ) throws -> TLSConfiguration {
        let label = name ?? uri.map { $0.split(separator: "/").suffix(2).joined(separator: "-") } ?? "anonymous"
        let issued = try authority.issue(CertificateRequest(
            commonName: label, uris: (uri.map { [$0] } ?? []) + extraURIs, dnsNames: dnsNames, ipAddresses: ipAddresses,
            notBefore: validFrom ?? Self.now - 3600, notAfter: validUntil ?? Self.now + 86_400,
            extendedKeyUsage: extendedKeyUsage))
        let certificateFile = directory.file("\(label).pem")
        let keyFile = directory.file("\(label).key")
        try issued.certificatePEM.write(toFile: certificateFile, atomically: true, encoding: .utf8)
        try issued.privateKeyPEM.write(toFile: keyFile, atomically: true, encoding: .utf8)
        return TLSConfiguration(
            trustRootsFile: otherCA ?? caFile, certificateChainFile: certificateFile, privateKeyFile: keyFile,
            handshakeTimeout: handshakeTimeout)
    }
}
