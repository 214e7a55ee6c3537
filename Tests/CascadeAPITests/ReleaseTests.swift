@testable import CascadeAPI
import CascadeCrypto
import CascadeWire
import Testing

@Suite("Manifests: build, sign, verify")
struct ReleaseTests {
    let key: Ed25519PrivateKey
    let verifier: ReleaseVerifier
    let directory: TemporaryDirectoryForAPI

    init() throws {
        key = try ServiceVectors.key("test-release-key")
        verifier = ReleaseVerifier(trustedKeys: [key.publicKey])
        directory = try TemporaryDirectoryForAPI()
    }

    /// A manifest of `bytes` in `chunkSize` chunks, built from a file as cascadectl does.
    func build(_ bytes: [UInt8], chunkSize: UInt32 = 4, version: String = "1.1.0") throws -> (Manifest, String) {
        let path = directory.file("artifact-\(bytes.count)-\(chunkSize)")
        try bytes.write(to: path)
        let manifest = try ManifestBuilder(chunkSize: chunkSize).build(fileAt: path, name: "cascade-agent", version: version, createdAt: 7)
        return (manifest, path)
    }

    func signed(_ manifest: Manifest) throws -> SignedManifest {
        try SignedManifest.sign(manifest, with: key)
    }

    /// Signs arbitrary manifest bytes with the test key, as a forger holding the key could.
    func signedBytes(_ bytes: [UInt8], keyID: String? = nil) throws -> SignedManifest {
        SignedManifest(manifestBytes: bytes, signature: try key.signature(for: SignedManifest.signedMessage(bytes)),
                       keyID: keyID ?? key.publicKey.keyID)
    }

    func rejection(_ signed: SignedManifest) -> ReleaseError? {
        captureError(ReleaseError.self) { _ = try verifier.verify(signed) }
    }

    @Test("a built manifest hashes every chunk and the whole file, streaming")
    func buildManifest() throws {
        let data = Array("0123456789".utf8)
        let (manifest, _) = try build(data)
        #expect(manifest.size == 10 && manifest.chunkSize == 4 && manifest.chunkCount == 3)
        #expect(manifest.chunkHashes == [SHA256.hash(Array("0123".utf8)), SHA256.hash(Array("4567".utf8)), SHA256.hash(Array("89".utf8))])
        #expect(manifest.sha256 == SHA256.hash(data))
        #expect(manifest.createdAt == 7 && manifest.keyID.isEmpty)
        #expect(manifest.size(ofChunk: 2) == 2 && manifest.offset(ofChunk: 2) == 8 && manifest.size(ofChunk: 3) == 0)
        #expect(manifest.size(ofChunk: -1) == 0 && manifest.size(ofChunk: .max) == 0)
        // An exact multiple of the chunk size has no short last chunk.
        #expect(try build(Array(repeating: 1, count: 8)).0.chunkCount == 2)
        // The default chunk size is 1 MiB.
        #expect(ManifestBuilder().chunkSize == 1_048_576)
    }

    @Test("a manifest built without a creation time is stamped now")
    func createdNow() throws {
        let path = directory.file("now")
        try [1, 2, 3].write(to: path)
        let manifest = try ManifestBuilder().build(fileAt: path, name: "a", version: "1.0")
        #expect(manifest.createdAt > 1_700_000_000)
    }

    @Test("an empty artifact has no chunks and still signs and verifies")
    func emptyArtifact() throws {
        let (manifest, path) = try build([])
        #expect(manifest.chunkCount == 0 && manifest.sha256 == SHA256.hash([]))
        _ = try verifier.verify(signed(manifest))
        try manifest.verifyFile(atPath: path)
    }

    @Test("a signed manifest verifies and yields exactly the manifest that was signed")
    func signAndVerify() throws {
        let (manifest, _) = try build(Array("0123456789".utf8))
        let signed = try signed(manifest)
        var expected = manifest
        expected.keyID = key.publicKey.keyID
        #expect(signed.keyID == key.publicKey.keyID)
        #expect(signed.signature.count == 64)
        #expect(try verifier.verify(signed) == expected)
        #expect(signed.manifestDigest == SHA256.hash(signed.manifestBytes))
        // Through the wire and back, byte for byte.
        #expect(try verifier.verify(SignedManifest(serializedBytes: signed.serializedBytes())) == expected)
    }

    @Test("a key that is not pinned is refused as unknown-key")
    func unknownKey() throws {
        let (manifest, _) = try build(Array("0123456789".utf8))
        let other = try Ed25519PrivateKey.generate()
        let error = try #require(rejection(try SignedManifest.sign(manifest, with: other)))
        #expect(error.code == .unknownKey)
        #expect(error.message == "the manifest is signed by key \"\(other.publicKey.keyID)\", which is not a pinned release key (pinned: \(key.publicKey.keyID))")
        let none = captureError(ReleaseError.self) { _ = try ReleaseVerifier(trustedKeys: []).verify(try signed(manifest)) }
        #expect(none?.message.hasSuffix("(pinned: none)") == true)
    }

    @Test("a flipped signature bit, a truncated signature and a tampered manifest are refused as bad-signature")
    func badSignature() throws {
        let (manifest, _) = try build(Array("0123456789".utf8))
        var flipped = try signed(manifest)
        flipped.signature[10] ^= 0x40
        #expect(rejection(flipped)?.code == .badSignature)
        #expect(rejection(flipped)?.message == "the manifest signature (64 bytes) does not verify with key \(key.publicKey.keyID)")
        var short = try signed(manifest)
        short.signature.removeLast()
        #expect(rejection(short)?.message == "the manifest signature (63 bytes) does not verify with key \(key.publicKey.keyID)")
        var tampered = try signed(manifest)
        tampered.manifestBytes[tampered.manifestBytes.count - 1] ^= 1
        #expect(rejection(tampered)?.code == .badSignature)
        // The signature covers the domain prefix: signing the bare bytes is not enough.
        var bare = try signed(manifest)
        bare.signature = try key.signature(for: bare.manifestBytes)
        #expect(rejection(bare)?.code == .badSignature)
    }

    @Test("signed bytes that are not a manifest are refused as malformed-manifest")
    func malformed() throws {
        let error = try #require(rejection(try signedBytes([0x0b, 0x00])))
        #expect(error.code == .malformedManifest)
        #expect(error.message.hasPrefix("the signed manifest does not decode: field 1 at offset 0 uses wire type 3"))
        #expect(rejection(try signedBytes([]))?.message == "the signed manifest does not decode: manifest field 6 (sha256) is required but absent")
    }

    @Test("every inconsistency is refused as inconsistent-manifest with its reason", arguments: [
        ("no name", "the manifest has no name"),
        ("bad version", "the manifest's version is not valid: \"1..2\" is not a release version: it has an empty number (\"..\", or a dot at an end)"),
        ("no key id", "the manifest names key \"\" but is signed by key KEY"),
        ("zero chunk size", "the manifest's chunk size is 0"),
        ("huge chunks", "the manifest's chunk size 4194304 exceeds the limit of 2097152 bytes"),
        ("too many chunks", "a 68719476737-byte artifact in 1048576-byte chunks needs 65537 chunks, more than the limit of 65536"),
        ("largest size", "a 18446744073709551615-byte artifact in 4-byte chunks needs 4611686018427387904 chunks, more than the limit of 65536"),
        ("too few hashes", "the manifest lists 2 chunk hashes but 10 bytes in 4-byte chunks make 3"),
        ("too many hashes", "the manifest lists 4 chunk hashes but 10 bytes in 4-byte chunks make 3"),
        ("key mismatch", "the manifest names key \"0000000000000000\" but is signed by key KEY"),
    ])
    func inconsistent(_ change: String, _ reason: String) throws {
        var (manifest, _) = try build(Array("0123456789".utf8))
        manifest.keyID = key.publicKey.keyID
        var signedKeyID: String?
        switch change {
        case "no name": manifest.name = ""
        case "bad version": manifest.version = "1..2"
        case "no key id": manifest.keyID = ""; signedKeyID = key.publicKey.keyID
        case "zero chunk size": manifest.chunkSize = 0
        case "huge chunks": manifest.chunkSize = 4 << 20
        case "too many chunks": manifest.chunkSize = 1 << 20; manifest.size = (1 << 36) + 1
        case "largest size": manifest.size = .max
        case "too few hashes": manifest.chunkHashes.removeLast()
        case "too many hashes": manifest.chunkHashes.append(manifest.sha256)
        case "key mismatch": manifest.keyID = "0000000000000000"; signedKeyID = key.publicKey.keyID
        default: Issue.record("no change \(change)")
        }
        let error = try #require(rejection(try signedBytes(manifest.serializedBytes(), keyID: signedKeyID)))
        #expect(error.code == .inconsistentManifest)
        #expect(error.message == reason.replacingOccurrences(of: "KEY", with: "\"\(key.publicKey.keyID)\""))
    }

    @Test("chunks are checked for index, exact size and hash, in that order")
    func chunks() throws {
        let (manifest, _) = try build(Array("0123456789".utf8))
        try manifest.verifyChunk(index: 0, bytes: Array("0123".utf8))
        try manifest.verifyChunk(index: 2, bytes: Array("89".utf8)[...])
        try manifest.verify(Chunk(index: 1, data: Array("4567".utf8), sha256: SHA256.hash(Array("4567".utf8))))
        func failure(_ index: Int, _ text: String) -> ReleaseError? {
            captureError(ReleaseError.self) { try manifest.verifyChunk(index: index, bytes: Array(text.utf8)) }
        }
        #expect(failure(3, "x") == ReleaseError(.wrongChunkIndex, "chunk 3 does not exist: release 1.1.0 has 3 chunks"))
        #expect(failure(-1, "x")?.code == .wrongChunkIndex)
        #expect(failure(0, "012") == ReleaseError(.wrongChunkSize, "chunk 0 of release 1.1.0 is 3 bytes, expected 4"))
        #expect(failure(2, "899") == ReleaseError(.wrongChunkSize, "chunk 2 of release 1.1.0 is 3 bytes, expected 2"))
        let altered = failure(1, "4568")
        #expect(altered?.code == .chunkHashMismatch)
        #expect(altered?.message == "chunk 1 of release 1.1.0 has SHA-256 \(SHA256.hash(Array("4568".utf8)).hex), the manifest says \(manifest.chunkHashes[1].hex)")
        // Right bytes with a wrong courtesy hash still fail.
        let lying = captureError(ReleaseError.self) {
            try manifest.verify(Chunk(index: 1, data: Array("4567".utf8), sha256: manifest.chunkHashes[0]))
        }
        #expect(lying?.code == .chunkHashMismatch)
    }

    @Test("a streamed artifact is checked chunk by chunk and as a whole")
    func artifactCheck() throws {
        let (manifest, _) = try build(Array("0123456789".utf8))
        let check = ArtifactCheck(manifest: manifest)
        try check.add(index: 0, bytes: Array("0123".utf8))
        let skipped = captureError(ReleaseError.self) { try check.add(index: 2, bytes: Array("89".utf8)) }
        #expect(skipped == ReleaseError(.wrongChunkIndex, "expected chunk 1 of release 1.1.0 next, got chunk 2"))
        let early = captureError(ReleaseError.self) { try check.finish() }
        #expect(early == ReleaseError(.artifactSizeMismatch, "the artifact ended after 1 of 3 chunks (4 of 10 bytes)"))
        try check.add(index: 1, bytes: Array("4567".utf8))
        try check.add(index: 2, bytes: Array("89".utf8))
        try check.finish()
        #expect(check.bytesChecked == 10)

        // A manifest whose chunk hashes are right but whole hash is wrong is caught at the end.
        var wrongWhole = manifest
        wrongWhole.sha256 = SHA256.hash([0])
        let whole = ArtifactCheck(manifest: wrongWhole)
        for (index, text) in ["0123", "4567", "89"].enumerated() { try whole.add(index: index, bytes: Array(text.utf8)) }
        #expect(captureError(ReleaseError.self) { try whole.finish() }?.code == .artifactHashMismatch)
    }

    @Test("a file on disk is verified against its manifest, streaming")
    func verifyFile() throws {
        let (manifest, path) = try build(Array("0123456789".utf8))
        try manifest.verifyFile(atPath: path)
        let longer = directory.file("longer")
        try Array("0123456789!".utf8).write(to: longer)
        #expect(captureError(ReleaseError.self) { try manifest.verifyFile(atPath: longer) }
            == ReleaseError(.artifactSizeMismatch, "\(longer) is 11 bytes, the manifest says 10"))
        let altered = directory.file("altered")
        try Array("0123456780".utf8).write(to: altered)
        #expect(captureError(ReleaseError.self) { try manifest.verifyFile(atPath: altered) }?.code == .chunkHashMismatch)
        let missing = directory.file("missing")
        let io = captureError(ReleaseError.self) { try manifest.verifyFile(atPath: missing) }
        #expect(io == ReleaseError(.io, "cannot open \(missing): No such file or directory"))
    }

    @Test("the builder refuses bad inputs with typed errors")
    func builderRefusals() throws {
        let path = directory.file("small")
        try [1, 2, 3].write(to: path)
        func refusal(_ build: () throws -> Void) -> ReleaseError? { captureError(ReleaseError.self, build) }
        #expect(refusal { _ = try ManifestBuilder().build(fileAt: path, name: "a", version: "v1") }?.code == .badVersion)
        #expect(refusal { _ = try ManifestBuilder().build(fileAt: path, name: "", version: "1") }
            == ReleaseError(.inconsistentManifest, "a release needs a name"))
        #expect(refusal { _ = try ManifestBuilder(chunkSize: 0).build(fileAt: path, name: "a", version: "1") }
            == ReleaseError(.inconsistentManifest, "chunk size 0 is outside 1...2097152"))
        #expect(refusal { _ = try ManifestBuilder().build(fileAt: directory.path, name: "a", version: "1") }
            == ReleaseError(.io, "\(directory.path) is not a regular file"))
        // 65537 one-byte chunks are over the chunk count limit.
        let big = directory.file("big")
        try [UInt8](repeating: 7, count: 65_537).write(to: big)
        #expect(refusal { _ = try ManifestBuilder(chunkSize: 1).build(fileAt: big, name: "a", version: "1") }?.message
            == "\(big) (65537 bytes) needs 65537 chunks of 1 bytes, more than the limit of 65536; use larger chunks")
    }

    @Test("release errors map to the status codes of services.md §5")
    func statusCodes() {
        #expect(ReleaseError(.unknownKey, "x").rpcError.code == .invalidArgument)
        #expect(ReleaseError(.badSignature, "x").rpcError.code == .invalidArgument)
        #expect(ReleaseError(.inconsistentManifest, "x").rpcError.code == .invalidArgument)
        #expect(ReleaseError(.wrongChunkIndex, "x").rpcError.code == .outOfRange)
        #expect(ReleaseError(.chunkHashMismatch, "x").rpcError.code == .dataLoss)
        #expect(ReleaseError(.artifactHashMismatch, "x").rpcError.code == .dataLoss)
        #expect(ReleaseError(.io, "x").rpcError.code == .internal)
        #expect(ReleaseError(.badSignature, "sig").description == "bad-signature: sig")
    }
}
