public import CascadeCrypto
public import CascadeWire

/// A manifest as it travels: the exact encoded manifest bytes, their Ed25519 signature and the
/// signing key's id (services.md §4.2). Receivers verify these bytes and only then decode them
/// (`ReleaseVerifier`), so nothing is ever re-encoded before checking.
///
/// ```
/// SignedManifest { 1 manifest: bytes  2 signature: bytes (64)  3 key_id: string }
/// ```
public struct SignedManifest: WireMessage, Hashable, Sendable {
    /// Domain separation: a signature over a manifest can never be replayed as a signature of
    /// anything else the same key might sign.
    public static let signaturePrefix: [UInt8] = Array("cascade-manifest-v1".utf8) + [0]

    public var manifestBytes: [UInt8]
    public var signature: [UInt8]
    public var keyID: String

    public init(manifestBytes: [UInt8], signature: [UInt8], keyID: String) {
        self.manifestBytes = manifestBytes
        self.signature = signature
        self.keyID = keyID
    }

    /// Signs `manifest`, after setting its key id to the key's.
    public static func sign(_ manifest: Manifest, with key: Ed25519PrivateKey) throws(CryptoError) -> SignedManifest {
        var manifest = manifest
        manifest.keyID = key.publicKey.keyID
        let bytes = manifest.serializedBytes()
        return SignedManifest(manifestBytes: bytes, signature: try key.signature(for: signedMessage(bytes)),
                              keyID: manifest.keyID)
    }

    /// What the signature covers: `signaturePrefix` followed by the manifest bytes.
    public static func signedMessage(_ manifestBytes: [UInt8]) -> [UInt8] {
        signaturePrefix + manifestBytes
    }

    /// SHA-256 of the manifest bytes: names this exact signed release.
    public var manifestDigest: SHA256Digest { SHA256.hash(manifestBytes) }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init(manifestBytes: [], signature: [], keyID: "")
        while let field = try reader.next() {
            switch field.number {
            case 1: manifestBytes = try field.bytes()
            case 2: signature = try field.bytes()
            case 3: keyID = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, manifestBytes)
        writer.put(2, signature)
        writer.put(3, keyID)
    }
}
