public import CascadeCrypto
import CascadeWire

/// Checks signed manifests against the release keys a node pins (services.md §4.2). Every
/// program that accepts a release — coordinator, leader, member — verifies with this.
public struct ReleaseVerifier: Sendable {
    public let trustedKeys: [String: Ed25519PublicKey]

    public init(trustedKeys: [Ed25519PublicKey]) {
        var keys: [String: Ed25519PublicKey] = [:]
        for key in trustedKeys { keys[key.keyID] = key }
        self.trustedKeys = keys
    }

    /// The manifest, decoded only after its bytes verified. Checks in order: known key id,
    /// signature, decoding, key id inside the manifest, consistency (`Manifest.validate`).
    public func verify(_ signed: SignedManifest) throws(ReleaseError) -> Manifest {
        guard let key = trustedKeys[signed.keyID] else {
            let pinned = trustedKeys.keys.sorted().joined(separator: ", ")
            throw ReleaseError(.unknownKey,
                "the manifest is signed by key \"\(signed.keyID)\", which is not a pinned release key (pinned: \(pinned.isEmpty ? "none" : pinned))")
        }
        guard key.isValidSignature(signed.signature, for: SignedManifest.signedMessage(signed.manifestBytes)) else {
            throw ReleaseError(.badSignature,
                "the manifest signature (\(signed.signature.count) bytes) does not verify with key \(signed.keyID)")
        }
        let manifest: Manifest
        do {
            manifest = try Manifest(serializedBytes: signed.manifestBytes)
        } catch {
            throw ReleaseError(.malformedManifest, "the signed manifest does not decode: \(error.message)")
        }
        guard manifest.keyID == signed.keyID else {
            throw ReleaseError(.inconsistentManifest,
                "the manifest names key \"\(manifest.keyID)\" but is signed by key \"\(signed.keyID)\"")
        }
        try manifest.validate()
        return manifest
    }
}

/// Verifies a whole artifact as it streams by, chunk after chunk in order: each chunk against
/// the manifest, and at the end the total size and the whole-artifact SHA-256. Not Sendable:
/// one task feeds it.
public final class ArtifactCheck {
    public let manifest: Manifest
    public private(set) var nextIndex = 0
    public private(set) var bytesChecked: UInt64 = 0
    private let whole = SHA256()

    public init(manifest: Manifest) {
        self.manifest = manifest
    }

    /// Checks chunk `index`, which must be the next one.
    public func add(index: Int, bytes: [UInt8]) throws(ReleaseError) {
        guard index == nextIndex else {
            throw ReleaseError(.wrongChunkIndex, "expected chunk \(nextIndex) of release \(manifest.version) next, got chunk \(index)")
        }
        try manifest.verifyChunk(index: index, bytes: bytes)
        whole.update(bytes)
        nextIndex += 1
        bytesChecked += UInt64(bytes.count)
    }

    /// Confirms every chunk arrived and the whole artifact's SHA-256.
    public func finish() throws(ReleaseError) {
        guard nextIndex == manifest.chunkCount, bytesChecked == manifest.size else {
            throw ReleaseError(.artifactSizeMismatch,
                "the artifact ended after \(nextIndex) of \(manifest.chunkCount) chunks (\(bytesChecked) of \(manifest.size) bytes)")
        }
        let digest = whole.finalize()
        guard digest == manifest.sha256 else {
            throw ReleaseError(.artifactHashMismatch,
                "the artifact's SHA-256 is \(digest.hex), the manifest says \(manifest.sha256.hex)")
        }
    }
}

extension Manifest {
    /// Verifies a file on disk against this manifest, reading one chunk at a time.
    public func verifyFile(atPath path: String) throws(ReleaseError) {
        guard chunkSize > 0 else { throw ReleaseError(.inconsistentManifest, "the manifest's chunk size is 0") }
        let file = try ChunkFile(path: path, chunkSize: Int(chunkSize))
        guard file.size == size else {
            throw ReleaseError(.artifactSizeMismatch, "\(path) is \(file.size) bytes, the manifest says \(size)")
        }
        let check = ArtifactCheck(manifest: self)
        while let chunk = try file.nextChunk() {
            try check.add(index: check.nextIndex, bytes: chunk)
        }
        try check.finish()
    }
}

extension ReleaseVerifier {
    /// The authorisation, decoded only after its bytes verified against a pinned key.
    public func verify(_ signed: SignedDowngrade) throws(ReleaseError) -> DowngradeAuthorization {
        guard let key = trustedKeys[signed.keyID] else {
            throw ReleaseError(.downgradeRefused, "the downgrade authorisation is signed by key \"\(signed.keyID)\", which is not a pinned release key")
        }
        guard key.isValidSignature(signed.signature, for: SignedDowngrade.signaturePrefix + signed.authorizationBytes) else {
            throw ReleaseError(.downgradeRefused, "the downgrade authorisation's signature does not verify with key \(signed.keyID)")
        }
        let authorization: DowngradeAuthorization
        do {
            authorization = try DowngradeAuthorization(serializedBytes: signed.authorizationBytes)
        } catch {
            throw ReleaseError(.downgradeRefused, "the signed downgrade authorisation does not decode: \(error.message)")
        }
        guard authorization.keyID == signed.keyID else {
            throw ReleaseError(.downgradeRefused, "the downgrade authorisation names key \"\(authorization.keyID)\" but is signed by \"\(signed.keyID)\"")
        }
        return authorization
    }

    /// The version rule of services.md §4.5: `manifest` may replace a program whose floor (the
    /// highest version it installed, or runs) is `floor` if it is not lower, or if `downgrade`
    /// verifies and names this program, exactly this version, a version to leave at or above
    /// the floor, and has not expired at `now` (unix seconds). A version that does not parse —
    /// the release's or the floor — is refused, never waved through.
    public func checkVersion(of manifest: Manifest, floor: String, downgrade: SignedDowngrade?, now: UInt64) throws(ReleaseError) {
        try checkVersion(name: manifest.name, version: manifest.version, floor: floor, downgrade: downgrade, now: now)
    }

    /// `checkVersion(of:...)` for release `version` of program `name`.
    public func checkVersion(name: String, version: String, floor: String, downgrade: SignedDowngrade?, now: UInt64) throws(ReleaseError) {
        let target = try ReleaseVersion(version)
        let current: ReleaseVersion
        do {
            current = try ReleaseVersion(floor)
        } catch {
            throw ReleaseError(.badVersion, "the installed version \"\(floor.prefix(80))\" does not parse, so \(version) cannot be compared with it")
        }
        guard target < current else { return }
        guard let downgrade else {
            throw ReleaseError(.downgradeRefused,
                "\(version) is lower than \(current), and going down needs a downgrade authorisation signed by a release key")
        }
        let authorization = try verify(downgrade)
        guard authorization.name == name else {
            throw ReleaseError(.downgradeRefused, "the downgrade authorisation is for \"\(authorization.name)\", not \"\(name)\"")
        }
        guard let to = try? ReleaseVersion(authorization.toVersion), to == target else {
            throw ReleaseError(.downgradeRefused, "the downgrade authorisation allows installing \(authorization.toVersion), not \(version)")
        }
        guard let from = try? ReleaseVersion(authorization.fromVersion), from >= current else {
            throw ReleaseError(.downgradeRefused, "the downgrade authorisation allows leaving \(authorization.fromVersion) or lower, not \(current)")
        }
        guard now < authorization.expiresAt else {
            throw ReleaseError(.downgradeRefused, "the downgrade authorisation to \(authorization.toVersion) expired at unix time \(authorization.expiresAt)")
        }
    }
}
