import COpenSSL
import CCascadeShims

/// An Ed25519 public key (32 raw bytes), used to verify release manifests.
public struct Ed25519PublicKey: Hashable, Sendable {
    public let rawRepresentation: [UInt8]

    public init(rawRepresentation: [UInt8]) throws(CryptoError) {
        guard rawRepresentation.count == 32 else {
            throw CryptoError(.invalidKey, "an Ed25519 public key is 32 bytes, not \(rawRepresentation.count)")
        }
        self.rawRepresentation = rawRepresentation
    }

    public init(pemRepresentation pem: String) throws(CryptoError) {
        let key = try PKey.parsePublicKeyPEM(pem)
        guard EVP_PKEY_get_id(key.pointer) == EVP_PKEY_ED25519 else {
            throw CryptoError(.invalidKey, "the PEM public key is not an Ed25519 key")
        }
        var raw = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(key.pointer, &raw, &length) == 1, length == 32 else {
            throw .openSSL("reading the raw Ed25519 public key failed", code: .invalidKey)
        }
        self.rawRepresentation = raw
    }

    /// A short, stable name for the key: the first 8 bytes of SHA-256 of the raw key, in hex.
    public var keyID: String {
        Hex.encode(SHA256.hash(rawRepresentation).bytes.prefix(8))
    }

    public var pemRepresentation: String {
        get throws(CryptoError) { try makePKey().publicKeyPEM() }
    }

    /// True only for a valid 64-byte signature of `message` by this key.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64, let key = try? makePKey() else { return false }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key.pointer) == 1 else { return false }
        let result = EVP_DigestVerify(context, signature, signature.count, message, message.count)
        OpenSSLErrors.clear()
        return result == 1
    }

    private func makePKey() throws(CryptoError) -> PKey {
        guard let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, rawRepresentation, 32) else {
            throw .openSSL("loading the Ed25519 public key failed", code: .invalidKey)
        }
        return PKey(taking: key)
    }
}

/// An Ed25519 private key (the 32-byte seed), used offline to sign releases.
public struct Ed25519PrivateKey: Sendable {
    public let rawRepresentation: [UInt8]
    public let publicKey: Ed25519PublicKey

    public static func generate() throws(CryptoError) -> Ed25519PrivateKey {
        guard let key = cascade_generate_ed25519() else { throw .openSSL("generating an Ed25519 key failed") }
        return try Ed25519PrivateKey(pkey: PKey(taking: key))
    }

    public init(rawRepresentation: [UInt8]) throws(CryptoError) {
        guard rawRepresentation.count == 32 else {
            throw CryptoError(.invalidKey, "an Ed25519 private key is 32 bytes, not \(rawRepresentation.count)")
        }
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, rawRepresentation, 32) else {
            throw .openSSL("loading the Ed25519 private key failed", code: .invalidKey)
        }
        try self.init(pkey: PKey(taking: key))
    }

    public init(pemRepresentation pem: String) throws(CryptoError) {
        let key = try PKey.parsePrivateKeyPEM(pem)
        guard EVP_PKEY_get_id(key.pointer) == EVP_PKEY_ED25519 else {
            throw CryptoError(.invalidKey, "the PEM private key is not an Ed25519 key")
        }
        try self.init(pkey: key)
    }

    private init(pkey: PKey) throws(CryptoError) {
        var seed = [UInt8](repeating: 0, count: 32)
        var seedLength = 32
        var pub = [UInt8](repeating: 0, count: 32)
        var pubLength = 32
        guard EVP_PKEY_get_raw_private_key(pkey.pointer, &seed, &seedLength) == 1, seedLength == 32,
              EVP_PKEY_get_raw_public_key(pkey.pointer, &pub, &pubLength) == 1, pubLength == 32
        else { throw .openSSL("reading the raw Ed25519 key failed", code: .invalidKey) }
        self.rawRepresentation = seed
        self.publicKey = try Ed25519PublicKey(rawRepresentation: pub)
    }

    public var pemRepresentation: String {
        get throws(CryptoError) { try makePKey().privateKeyPEM() }
    }

    /// The 64-byte signature of `message`.
    public func signature(for message: [UInt8]) throws(CryptoError) -> [UInt8] {
        let key = try makePKey()
        guard let context = EVP_MD_CTX_new() else { throw .openSSL("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        guard EVP_DigestSignInit(context, nil, nil, nil, key.pointer) == 1,
              EVP_DigestSign(context, &signature, &length, message, message.count) == 1, length == 64
        else { throw .openSSL("Ed25519 signing failed") }
        return signature
    }

    private func makePKey() throws(CryptoError) -> PKey {
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, rawRepresentation, 32) else {
            throw .openSSL("loading the Ed25519 private key failed", code: .invalidKey)
        }
        return PKey(taking: key)
    }
}
