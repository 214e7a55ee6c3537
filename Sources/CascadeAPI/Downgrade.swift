public import CascadeCrypto
public import CascadeWire

/// Permission, made offline with a release key, for agents of one program to go down from at
/// most `fromVersion` to exactly `toVersion` until `expiresAt` (services.md §4.5). Agents refuse
/// any lower version without one; the coordinator cannot make one, since it never holds a
/// release key.
public struct DowngradeAuthorization: WireMessage, Hashable, Sendable {
    /// The program (the manifest's `name`).
    public var name: String
    /// The highest version an agent may leave: an agent whose floor is above it refuses.
    public var fromVersion: String
    /// The only version it authorises installing.
    public var toVersion: String
    /// Unix seconds; at or after it the authorisation is void.
    public var expiresAt: UInt64
    public var keyID: String

    public init(name: String = "", fromVersion: String = "", toVersion: String = "", expiresAt: UInt64 = 0, keyID: String = "") {
        self.name = name
        self.fromVersion = fromVersion
        self.toVersion = toVersion
        self.expiresAt = expiresAt
        self.keyID = keyID
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: name = try field.string()
            case 2: fromVersion = try field.string()
            case 3: toVersion = try field.string()
            case 4: expiresAt = try field.uint64()
            case 5: keyID = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, name)
        writer.put(2, fromVersion)
        writer.put(3, toVersion)
        writer.put(4, expiresAt)
        writer.put(5, keyID)
    }
}

/// A downgrade authorisation as it travels: its exact encoded bytes, an Ed25519 signature over
/// `cascade-downgrade-v1\0` + those bytes, and the key id. Verified before it is decoded, like
/// a `SignedManifest`.
public struct SignedDowngrade: WireMessage, Hashable, Sendable {
    /// Domain separation from manifest signatures made with the same key.
    public static let signaturePrefix: [UInt8] = Array("cascade-downgrade-v1".utf8) + [0]

    public var authorizationBytes: [UInt8]
    public var signature: [UInt8]
    public var keyID: String

    public init(authorizationBytes: [UInt8] = [], signature: [UInt8] = [], keyID: String = "") {
        self.authorizationBytes = authorizationBytes
        self.signature = signature
        self.keyID = keyID
    }

    /// Signs `authorization` after setting its key id to the key's.
    public static func sign(_ authorization: DowngradeAuthorization, with key: Ed25519PrivateKey) throws(CryptoError) -> SignedDowngrade {
        var authorization = authorization
        authorization.keyID = key.publicKey.keyID
        let bytes = authorization.serializedBytes()
        return SignedDowngrade(authorizationBytes: bytes, signature: try key.signature(for: signaturePrefix + bytes), keyID: authorization.keyID)
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: authorizationBytes = try field.bytes()
            case 2: signature = try field.bytes()
            case 3: keyID = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, authorizationBytes)
        writer.put(2, signature)
        writer.put(3, keyID)
    }
}

/// Coordinator → agent, on the agent's own `Session`: what a rollout installs. A member acts on
/// its leader's first instruction only when the order matches this, and a leader upgrades
/// itself only to this (services.md §3.2): the leader relays, the coordinator decides.
public struct RolloutExpectation: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    /// The manifest `name` (the program).
    public var releaseName: String
    public var releaseVersion: String
    /// SHA-256 of the signed manifest bytes: names one signed release exactly.
    public var manifestSHA256: SHA256Digest?
    /// Present when the rollout goes down: the operator's signed authorisation.
    public var downgrade: SignedDowngrade?

    public init(rolloutID: UInt64 = 0, releaseName: String = "", releaseVersion: String = "", manifestSHA256: SHA256Digest? = nil,
                downgrade: SignedDowngrade? = nil) {
        self.rolloutID = rolloutID
        self.releaseName = releaseName
        self.releaseVersion = releaseVersion
        self.manifestSHA256 = manifestSHA256
        self.downgrade = downgrade
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: releaseName = try field.string()
            case 3: releaseVersion = try field.string()
            case 4: manifestSHA256 = try field.digest()
            case 5: downgrade = try field.message()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, releaseName)
        writer.put(3, releaseVersion)
        writer.put(4, manifestSHA256)
        writer.put(5, downgrade)
    }
}
