import COpenSSL
import CCascadeShims

/// Owns one `EVP_PKEY` and frees it in `deinit`. Internal: public key types hold raw bytes.
final class PKey {
    let pointer: OpaquePointer

    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    static func generateECP256() throws(CryptoError) -> PKey {
        guard let key = cascade_generate_ec_p256() else { throw .openSSL("generating an EC P-256 key failed") }
        return PKey(taking: key)
    }

    static func parsePrivateKeyPEM(_ pem: String) throws(CryptoError) -> PKey {
        let key: OpaquePointer? = MemoryBIO.withReadable(pem) { bio in PEM_read_bio_PrivateKey(bio, nil, cascade_no_password, nil) }
        guard let key else { throw .openSSL("the text is not an unencrypted PEM private key", code: .invalidKey) }
        return PKey(taking: key)
    }

    static func parsePublicKeyPEM(_ pem: String) throws(CryptoError) -> PKey {
        let key: OpaquePointer? = MemoryBIO.withReadable(pem) { bio in PEM_read_bio_PUBKEY(bio, nil, nil, nil) }
        guard let key else { throw .openSSL("the text is not a PEM public key", code: .invalidKey) }
        return PKey(taking: key)
    }

    func privateKeyPEM() throws(CryptoError) -> String {
        try MemoryBIO.writing { bio in PEM_write_bio_PrivateKey(bio, pointer, nil, nil, 0, nil, nil) == 1 }
    }

    func publicKeyPEM() throws(CryptoError) -> String {
        try MemoryBIO.writing { bio in PEM_write_bio_PUBKEY(bio, pointer) == 1 }
    }
}

/// Memory BIOs, freed on every path.
enum MemoryBIO {
    static func withReadable<T>(_ text: String, _ body: (OpaquePointer) -> T?) -> T? {
        OpenSSLErrors.clear()
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { raw -> T? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return body(bio)
        }
    }

    static func writing(_ body: (OpaquePointer) -> Bool) throws(CryptoError) -> String {
        OpenSSLErrors.clear()
        guard let bio = BIO_new(BIO_s_mem()) else { throw .openSSL("BIO_new failed") }
        defer { BIO_free(bio) }
        guard body(bio) else { throw .openSSL("writing PEM failed") }
        var data: UnsafeMutablePointer<CChar>?
        let length = cascade_BIO_get_mem_data(bio, &data)
        guard let data, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }
}
