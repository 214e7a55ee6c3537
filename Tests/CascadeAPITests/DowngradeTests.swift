@testable import CascadeAPI
import CascadeCrypto
import CascadeWire
import Testing

@Suite("Install floor and downgrade authorisations (services.md §4.5)")
struct DowngradeTests {
    let key: Ed25519PrivateKey
    let verifier: ReleaseVerifier
    let now: UInt64 = 1_800_000_000

    init() throws {
        key = try ServiceVectors.key("test-release-key")
        verifier = ReleaseVerifier(trustedKeys: [key.publicKey])
    }

    func authorisation(name: String = "cascade-agent", from: String = "2.0", to: String = "1.1", expires: UInt64? = nil,
                       key: Ed25519PrivateKey? = nil) throws -> SignedDowngrade {
        try SignedDowngrade.sign(
            DowngradeAuthorization(name: name, fromVersion: from, toVersion: to, expiresAt: expires ?? now + 60), with: key ?? self.key)
    }

    func refusal(_ version: String, floor: String, _ downgrade: SignedDowngrade?, name: String = "cascade-agent") -> ReleaseError? {
        do {
            try verifier.checkVersion(name: name, version: version, floor: floor, downgrade: downgrade, now: now)
            return nil
        } catch {
            return error
        }
    }

    @Test("the same or a higher version needs nothing; a lower one needs an authorisation")
    func upAndDown() throws {
        #expect(refusal("1.1", floor: "1.1", nil) == nil)
        #expect(refusal("1.2", floor: "1.1", nil) == nil)
        #expect(refusal("1.1.0", floor: "1.1", nil) == nil)
        let down = refusal("1.0", floor: "1.1", nil)
        #expect(down?.code == .downgradeRefused)
        #expect(down?.message.contains("1.0 is lower than 1.1") == true)
        // A pre-release is lower than its release.
        #expect(refusal("1.1-rc1", floor: "1.1", nil)?.code == .downgradeRefused)
    }

    @Test("a valid authorisation allows exactly its version, from any floor up to its 'from'")
    func validAuthorisation() throws {
        let valid = try authorisation()
        #expect(refusal("1.1", floor: "2.0", valid) == nil)
        #expect(refusal("1.1.0", floor: "1.5", valid) == nil)
        #expect(refusal("1.1", floor: "2.0.1", valid)?.message.contains("not 2.0.1") == true)
        #expect(refusal("1.0", floor: "2.0", valid)?.message.contains("allows installing 1.1, not 1.0") == true)
    }

    @Test("expired, other program, untrusted key, forged or tampered authorisations are refused",
          arguments: ["expired", "program", "key", "signature", "bytes", "key-id"])
    func invalidAuthorisations(_ kind: String) throws {
        var signed = try authorisation()
        var expected = ""
        switch kind {
        case "expired":
            signed = try authorisation(expires: now)
            expected = "expired"
        case "program":
            signed = try authorisation(name: "cascade-other")
            expected = "is for \"cascade-other\""
        case "key":
            signed = try authorisation(key: try Ed25519PrivateKey.generate())
            expected = "not a pinned release key"
        case "signature":
            signed.signature[0] ^= 1
            expected = "does not verify"
        case "bytes":
            // Re-encoding with a later expiry breaks the signature over the original bytes.
            var decoded = try DowngradeAuthorization(serializedBytes: signed.authorizationBytes)
            decoded.expiresAt += 86_400
            signed.authorizationBytes = decoded.serializedBytes()
            expected = "does not verify"
        default:
            signed.keyID = "0000000000000000"
            expected = "not a pinned release key"
        }
        let refused = refusal("1.1", floor: "2.0", signed)
        #expect(refused?.code == .downgradeRefused)
        #expect(refused?.message.contains(expected) == true, "\(refused?.message ?? "accepted")")
    }

    @Test("a version that does not parse is refused, never waved through")
    func unparseable() {
        #expect(refusal("banana", floor: "1.0", nil)?.code == .badVersion)
        #expect(refusal("1.1", floor: "dev-build", nil)?.code == .badVersion)
    }

    @Test("an authorisation signature is never valid as a manifest signature, nor the reverse")
    func domainSeparation() throws {
        let signed = try authorisation()
        let asManifest = SignedManifest(manifestBytes: signed.authorizationBytes, signature: signed.signature, keyID: signed.keyID)
        #expect(captureError(ReleaseError.self) { _ = try verifier.verify(asManifest) }?.code == .badSignature)
    }

    @Test("the messages round-trip and skip unknown fields")
    func roundTrip() throws {
        let signed = try authorisation()
        #expect(try SignedDowngrade(serializedBytes: signed.serializedBytes()) == signed)
        let expectation = RolloutExpectation(rolloutID: 7, releaseName: "cascade-agent", releaseVersion: "1.1",
                                             manifestSHA256: SHA256.hash([1]), downgrade: signed)
        var bytes = expectation.serializedBytes()
        bytes += [0x78, 0x01]  // field 15, varint 1: a newer field
        #expect(try RolloutExpectation(serializedBytes: bytes) == expectation)
    }
}
