import CascadeCrypto
import Testing

@Suite("SHA-256")
struct SHA256Tests {
    @Test("known digests from FIPS 180-2", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func knownDigests(input: String, hex: String) {
        #expect(SHA256.hash(Array(input.utf8)).hex == hex)
    }

    @Test("a million a's fed in uneven pieces match the published digest")
    func streamingMatchesOneShot() {
        let hasher = SHA256()
        var remaining = 1_000_000
        var piece = 1
        while remaining > 0 {
            let count = min(piece, remaining)
            hasher.update([UInt8](repeating: UInt8(ascii: "a"), count: count))
            remaining -= count
            piece = piece * 3 + 1
        }
        #expect(hasher.finalize().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("finalize leaves the hasher ready for the next chunk")
    func finalizeResets() {
        let hasher = SHA256()
        hasher.update(Array("abc".utf8))
        _ = hasher.finalize()
        hasher.update(Array("abc".utf8))
        #expect(hasher.finalize() == SHA256.hash(Array("abc".utf8)))
    }

    @Test("digests parse from hex and reject the wrong length")
    func digestHex() {
        let digest = SHA256.hash([1, 2, 3])
        #expect(SHA256Digest(hex: digest.hex) == digest)
        #expect(SHA256Digest(hex: "abcd") == nil)
        #expect(SHA256Digest(hex: String(repeating: "zz", count: 32)) == nil)
    }
}
