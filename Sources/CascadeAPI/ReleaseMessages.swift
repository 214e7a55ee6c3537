public import CascadeCrypto
public import CascadeWire

/// A stored release as the coordinator lists it.
public struct ReleaseInfo: WireMessage, Hashable, Sendable {
    public var name: String
    public var version: String
    public var size: UInt64
    public var chunkSize: UInt32
    public var chunkCount: UInt32
    /// The artifact's SHA-256.
    public var sha256: SHA256Digest?
    public var keyID: String
    /// Unix seconds, from the manifest.
    public var createdAt: UInt64
    /// Unix milliseconds when the coordinator first accepted the manifest.
    public var pushedAtMs: UInt64
    /// Operator id that pushed it.
    public var pushedBy: String
    /// Chunks the coordinator holds, verified.
    public var chunksPresent: UInt32
    /// Every chunk is held and the whole artifact verified: the release can be rolled out.
    public var complete: Bool
    /// SHA-256 of the signed manifest bytes (`SignedManifest.manifestDigest`).
    public var manifestSHA256: SHA256Digest?
    /// Why the stored artifact failed verification where it rests; empty when it did not.
    public var damage: String

    public init(name: String = "", version: String = "", size: UInt64 = 0, chunkSize: UInt32 = 0, chunkCount: UInt32 = 0,
                sha256: SHA256Digest? = nil, keyID: String = "", createdAt: UInt64 = 0, pushedAtMs: UInt64 = 0,
                pushedBy: String = "", chunksPresent: UInt32 = 0, complete: Bool = false, manifestSHA256: SHA256Digest? = nil,
                damage: String = "") {
        self.name = name
        self.version = version
        self.size = size
        self.chunkSize = chunkSize
        self.chunkCount = chunkCount
        self.sha256 = sha256
        self.keyID = keyID
        self.createdAt = createdAt
        self.pushedAtMs = pushedAtMs
        self.pushedBy = pushedBy
        self.chunksPresent = chunksPresent
        self.complete = complete
        self.manifestSHA256 = manifestSHA256
        self.damage = damage
    }

    /// The manifest's description of the release; the coordinator adds the rest.
    public init(manifest: Manifest, manifestSHA256: SHA256Digest) {
        self.init(name: manifest.name, version: manifest.version, size: manifest.size, chunkSize: manifest.chunkSize,
                  chunkCount: UInt32(manifest.chunkCount), sha256: manifest.sha256, keyID: manifest.keyID,
                  createdAt: manifest.createdAt, manifestSHA256: manifestSHA256)
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: name = try field.string()
            case 2: version = try field.string()
            case 3: size = try field.uint64()
            case 4: chunkSize = try field.uint32()
            case 5: chunkCount = try field.uint32()
            case 6: sha256 = try field.digest()
            case 7: keyID = try field.string()
            case 8: createdAt = try field.uint64()
            case 9: pushedAtMs = try field.uint64()
            case 10: pushedBy = try field.string()
            case 11: chunksPresent = try field.uint32()
            case 12: complete = try field.bool()
            case 13: manifestSHA256 = try field.digest()
            case 14: damage = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, name)
        writer.put(2, version)
        writer.put(3, size)
        writer.put(4, chunkSize)
        writer.put(5, chunkCount)
        writer.put(6, sha256)
        writer.put(7, keyID)
        writer.put(8, createdAt)
        writer.put(9, pushedAtMs)
        writer.put(10, pushedBy)
        writer.put(11, chunksPresent)
        writer.put(12, complete)
        writer.put(13, manifestSHA256)
        writer.put(14, damage)
    }
}

/// One message of `cascade.Operator/PushRelease`: the first carries the signed manifest, every
/// later one a chunk (services.md §3.6).
public struct PushReleaseRequest: WireMessage, Hashable, Sendable {
    public var signedManifest: SignedManifest?
    public var chunk: Chunk?

    public init(signedManifest: SignedManifest? = nil, chunk: Chunk? = nil) {
        self.signedManifest = signedManifest
        self.chunk = chunk
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: signedManifest = try field.message()
            case 2: chunk = try field.message()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, signedManifest)
        writer.put(2, chunk)
    }
}

/// `cascade.Operator/PushRelease` response.
public struct PushReleaseResponse: WireMessage, Hashable, Sendable {
    public var release: ReleaseInfo?

    public init(release: ReleaseInfo? = nil) {
        self.release = release
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            if field.number == 1 { release = try field.message() }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, release)
    }
}

/// Request naming one release by version: `ReleaseStatus` and `ShowRelease`.
public struct ReleaseQuery: WireMessage, Hashable, Sendable {
    public var version: String

    public init(version: String = "") {
        self.version = version
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            if field.number == 1 { version = try field.string() }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, version)
    }
}

/// `cascade.Operator/ReleaseStatus` response: what the coordinator holds of a release, so an
/// interrupted push resumes with the missing chunks only.
public struct ReleaseStatusResponse: WireMessage, Hashable, Sendable {
    /// Absent when the coordinator has no manifest for the version.
    public var release: ReleaseInfo?
    /// Bit i set = chunk i held and verified: byte i / 8, bit i % 8 (bit 0 = least significant).
    public var presentBitmap: [UInt8]

    public init(release: ReleaseInfo? = nil, presentBitmap: [UInt8] = []) {
        self.release = release
        self.presentBitmap = presentBitmap
    }

    /// Builds the bitmap from the indexes held; indexes outside the release are ignored.
    public init(release: ReleaseInfo?, present: some Sequence<Int>) {
        let count = Self.chunkCount(of: release)
        var bitmap = [UInt8](repeating: 0, count: (count + 7) / 8)
        for index in present where index >= 0 && index < count {
            bitmap[index / 8] |= 1 << UInt8(index % 8)
        }
        self.init(release: release, presentBitmap: bitmap)
    }

    /// Whether chunk `index` is held; bits past the release's chunk count never count.
    public func hasChunk(_ index: Int) -> Bool {
        guard index >= 0 && index < Self.chunkCount(of: release) && index / 8 < presentBitmap.count else { return false }
        return presentBitmap[index / 8] & (1 << UInt8(index % 8)) != 0
    }

    /// The chunk indexes still missing, in order.
    public var missingChunks: [Int] {
        (0..<Self.chunkCount(of: release)).filter { !hasChunk($0) }
    }

    /// The release's chunk count, never more than a manifest may hold (a peer's number is not
    /// allowed to size our allocations).
    private static func chunkCount(of release: ReleaseInfo?) -> Int {
        min(Int(release?.chunkCount ?? 0), APILimits.maxChunkCount)
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: release = try field.message()
            case 2: presentBitmap = try field.bytes()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, release)
        writer.put(2, presentBitmap)
    }
}

/// `cascade.Operator/ListReleases` request.
public struct ListReleasesRequest: WireMessage, Hashable, Sendable {
    public init() {}

    public init(from reader: inout MessageReader) throws(WireError) {
        while try reader.next() != nil {}
    }

    public func encode(to writer: inout MessageWriter) {}
}

/// `cascade.Operator/ListReleases` response, newest first.
public struct ListReleasesResponse: WireMessage, Hashable, Sendable {
    public var releases: [ReleaseInfo]

    public init(releases: [ReleaseInfo] = []) {
        self.releases = releases
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            if field.number == 1 { try appendBounded(field.message(), to: &releases, field: field) }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, releases)
    }
}

/// `cascade.Operator/ShowRelease` response.
public struct ShowReleaseResponse: WireMessage, Hashable, Sendable {
    public var release: ReleaseInfo?
    public var signedManifest: SignedManifest?

    public init(release: ReleaseInfo? = nil, signedManifest: SignedManifest? = nil) {
        self.release = release
        self.signedManifest = signedManifest
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: release = try field.message()
            case 2: signedManifest = try field.message()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, release)
        writer.put(2, signedManifest)
    }
}
