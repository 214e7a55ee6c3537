public import CascadeCrypto

/// A release as pushed: the signed manifest (bytes as signed, opaque to the store) and the
/// facts the coordinator read from it after verifying the signature.
public struct NewRelease: Hashable, Sendable {
    public var version: String
    public var name: String
    public var manifest: [UInt8]
    public var signature: [UInt8]
    public var keyID: String
    /// SHA-256 of the whole artifact: its content address in the blob store.
    public var blobDigest: SHA256Digest
    public var size: Int64
    public var chunkSize: Int
    public var chunkCount: Int
    /// The manifest's creation time.
    public var createdAt: Timestamp

    public init(
        version: String, name: String, manifest: [UInt8], signature: [UInt8], keyID: String,
        blobDigest: SHA256Digest, size: Int64, chunkSize: Int, chunkCount: Int, createdAt: Timestamp
    ) {
        self.version = version
        self.name = name
        self.manifest = manifest
        self.signature = signature
        self.keyID = keyID
        self.blobDigest = blobDigest
        self.size = size
        self.chunkSize = chunkSize
        self.chunkCount = chunkCount
        self.createdAt = createdAt
    }

    /// The byte length of chunk `index` (all `chunkSize` but the last).
    public func length(ofChunk index: Int) -> Int {
        let start = Int64(index) * Int64(chunkSize)
        return Int(max(0, min(Int64(chunkSize), size - start)))
    }
}

public struct ReleaseRecord: Hashable, Sendable {
    public var release: NewRelease
    /// When the push started on this coordinator.
    public var storedAt: Timestamp
    /// Every chunk is stored and the whole blob verified; only complete releases roll out.
    public var isComplete: Bool
    /// The id of whoever started the push (an operator); empty for releases stored before
    /// schema version 3.
    public var pushedBy: String
    /// Why the stored blob failed verification where it rests; empty when it did not. A
    /// damaged release is incomplete until the same signed artifact is pushed again.
    public var damage: String = ""
    /// Deleted by an operator while rollouts still refer to it: only their history remains.
    public var isDeleted: Bool = false

    public var version: String { release.version }
}
