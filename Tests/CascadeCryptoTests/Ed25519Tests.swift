import CascadeCrypto
import Foundation
import Testing

@Suite("Ed25519")
struct Ed25519Tests {
    // RFC 8032 §7.1, test 2 (one-byte message).
    let seed = Hex.decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")!
    let publicRaw = Hex.decode("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")!
    let message: [UInt8] = [0x72]
    let expected = Hex.decode(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")!

    @Test("signing the RFC 8032 vector gives the published signature")
    func rfcVector() throws {
        let key = try Ed25519PrivateKey(rawRepresentation: seed)
        #expect(key.publicKey.rawRepresentation == publicRaw)
        #expect(try key.signature(for: message) == expected)
        #expect(key.publicKey.isValidSignature(expected, for: message))
    }

    @Test("a changed message, signature or key fails verification")
    func tampering() throws {
        let key = try Ed25519PrivateKey.generate()
        let data = Array("release 1.1 manifest".utf8)
        let signature = try key.signature(for: data)
        #expect(key.publicKey.isValidSignature(signature, for: data))
        #expect(!key.publicKey.isValidSignature(signature, for: data + [0]))
        var flipped = signature
        flipped[10] ^= 0x01
        #expect(!key.publicKey.isValidSignature(flipped, for: data))
        #expect(!key.publicKey.isValidSignature(Array(signature.prefix(63)), for: data))
        let other = try Ed25519PrivateKey.generate()
        #expect(!other.publicKey.isValidSignature(signature, for: data))
    }

    @Test("keys survive a PEM round trip and the key id is stable")
    func pemRoundTrip() throws {
        let key = try Ed25519PrivateKey.generate()
        let privatePEM = try key.pemRepresentation
        let publicPEM = try key.publicKey.pemRepresentation
        #expect(privatePEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(publicPEM.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        let loaded = try Ed25519PrivateKey(pemRepresentation: privatePEM)
        #expect(loaded.rawRepresentation == key.rawRepresentation)
        let loadedPublic = try Ed25519PublicKey(pemRepresentation: publicPEM)
        #expect(loadedPublic == key.publicKey)
        #expect(loadedPublic.keyID == key.publicKey.keyID)
        #expect(key.publicKey.keyID.count == 16)
    }

    @Test("garbage and non-Ed25519 PEM give a typed invalid-key error")
    func badPEM() throws {
        let garbage = #expect(throws: CryptoError.self) { try Ed25519PrivateKey(pemRepresentation: "not a key") }
        #expect(garbage?.code == .invalidKey)
        let ca = try CertificateAuthority(commonName: "x", now: Int64(Date().timeIntervalSince1970))
        let ecKey = try ca.issue(CertificateRequest(commonName: "leaf", notBefore: 0, notAfter: 4_000_000_000)).privateKeyPEM
        let wrongType = #expect(throws: CryptoError.self) { try Ed25519PrivateKey(pemRepresentation: ecKey) }
        #expect(wrongType?.message.contains("not an Ed25519 key") == true)
        #expect(throws: CryptoError.self) { try Ed25519PublicKey(rawRepresentation: [1, 2, 3]) }
    }

    @Test("secret files are created 0600 and never overwritten")
    func secretFile() throws {
        let directory = NSTemporaryDirectory() + "/cascade-secret-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/release.key"
        try SecretFile.create(at: path, contents: "first")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let error = #expect(throws: CryptoError.self) { try SecretFile.create(at: path, contents: "second") }
        #expect(error?.message.contains("refusing to overwrite") == true)
        #expect(try SecretFile.read(path) == "first")
    }
}
