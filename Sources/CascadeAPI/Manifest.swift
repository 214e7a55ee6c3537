public import CascadeCrypto
public import CascadeWire

/// What a release is, byte for byte (services.md §4.1): signed by the operator's offline key,
/// it covers every chunk through its SHA-256, so leaders can cache but never alter a release.
///
/// Decoding enforces the wire rules (digest lengths, at most `APILimits.maxChunkCount`
/// chunks); `validate()` adds the consistency rules. `ReleaseVerifier` runs both, after the
/// signature.
public struct Manifest: WireMessage, Hashable, Sendable {
    /// The artifact's name, e.g. "cascade-agent".
    public var name: String
    /// A `ReleaseVersion` string, e.g. "1.10.2" or "2.0-rc1".
    public var version: String
    /// Artifact size in bytes.
    public var size: UInt64
    /// Every chunk has this size except the last, which holds the remainder.
    public var chunkSize: UInt32
    /// SHA-256 of each chunk, in order.
    public var chunkHashes: [SHA256Digest]
    /// SHA-256 of the whole artifact: its content address in the coordinator's store.
    public var sha256: SHA256Digest
    /// Unix seconds when the manifest was built.
    public var createdAt: UInt64
    /// `Ed25519PublicKey.keyID` of the signing key; must equal the `SignedManifest`'s key id.
    public var keyID: String

    public init(
        name: String, version: String, size: UInt64, chunkSize: UInt32 = APILimits.defaultChunkSize,
        chunkHashes: [SHA256Digest], sha256: SHA256Digest, createdAt: UInt64, keyID: String = ""
    ) {
        self.name = name
        self.version = version
        self.size = size
        self.chunkSize = chunkSize
        self.chunkHashes = chunkHashes
        self.sha256 = sha256
        self.createdAt = createdAt
        self.keyID = keyID
    }

    public var chunkCount: Int { chunkHashes.count }

    /// The number of chunks `size` and `chunkSize` call for (nil when chunkSize is 0).
    public var expectedChunkCount: UInt64? {
        chunkSize == 0 ? nil : Self.chunks(size: size, chunkSize: chunkSize)
    }

    /// ceil(size / chunkSize), without the overflow `size + chunkSize - 1` has for huge sizes.
    static func chunks(size: UInt64, chunkSize: UInt32) -> UInt64 {
        let (whole, rest) = size.quotientAndRemainder(dividingBy: UInt64(chunkSize))
        return rest == 0 ? whole : whole + 1
    }

    /// Byte offset of chunk `index` (0...chunkCount) in the artifact.
    public func offset(ofChunk index: Int) -> UInt64 {
        precondition(index >= 0 && index <= APILimits.maxChunkCount, "chunk index \(index) is outside 0...\(APILimits.maxChunkCount)")
        return UInt64(index) * UInt64(chunkSize)
    }

    /// Size of chunk `index`: `chunkSize`, or the remainder for the last chunk; 0 for an index
    /// past the end (or negative), so any index from the wire is safe to ask about.
    public func size(ofChunk index: Int) -> Int {
        guard index >= 0 && index <= APILimits.maxChunkCount else { return 0 }
        let start = offset(ofChunk: index)
        guard start < size else { return 0 }
        return Int(min(UInt64(chunkSize), size - start))
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        var name = "", version = "", keyID = ""
        var size: UInt64 = 0, createdAt: UInt64 = 0
        var chunkSize: UInt32 = 0
        var hashes: [SHA256Digest] = []
        var whole: SHA256Digest?
        while let field = try reader.next() {
            switch field.number {
            case 1: name = try field.string()
            case 2: version = try field.string()
            case 3: size = try field.uint64()
            case 4: chunkSize = try field.uint32()
            case 5: hashes = try Self.splitDigests(field)
            case 6: whole = try field.digest()
            case 7: createdAt = try field.uint64()
            case 8: keyID = try field.string()
            default: continue
            }
        }
        guard let whole else {
            throw WireError(.valueOutOfRange, code: .protocolError, "manifest field 6 (sha256) is required but absent")
        }
        self.init(name: name, version: version, size: size, chunkSize: chunkSize,
                  chunkHashes: hashes, sha256: whole, createdAt: createdAt, keyID: keyID)
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, name)
        writer.put(2, version)
        writer.put(3, size)
        writer.put(4, chunkSize)
        if !chunkHashes.isEmpty {
            writer.writeBytes(field: 5, chunkHashes.flatMap(\.bytes))
        }
        writer.put(6, sha256)
        writer.put(7, createdAt)
        writer.put(8, keyID)
    }

    /// Field 5 is the concatenation of 32-byte digests, bounded before anything is allocated.
    private static func splitDigests(_ field: Field) throws(WireError) -> [SHA256Digest] {
        let raw = try field.byteSlice()
        guard raw.count % 32 == 0 else {
            throw WireError(.valueOutOfRange, code: .protocolError,
                "manifest field 5 (chunk_sha256) is \(raw.count) bytes, not a multiple of 32")
        }
        guard raw.count / 32 <= APILimits.maxChunkCount else {
            throw WireError(.valueOutOfRange, code: .protocolError,
                "manifest lists \(raw.count / 32) chunks, more than the limit of \(APILimits.maxChunkCount)")
        }
        var hashes: [SHA256Digest] = []
        hashes.reserveCapacity(raw.count / 32)
        var start = raw.startIndex
        while start < raw.endIndex {
            hashes.append(SHA256Digest(bytes: Array(raw[start..<start + 32]))!)
            start += 32
        }
        return hashes
    }
}

extension Manifest {
    /// The consistency rules of services.md §4.1, in that order. Throws `inconsistentManifest`.
    public func validate() throws(ReleaseError) {
        func fail(_ why: String) -> ReleaseError { ReleaseError(.inconsistentManifest, why) }
        guard !name.isEmpty else { throw fail("the manifest has no name") }
        do {
            _ = try ReleaseVersion(version)
        } catch {
            throw fail("the manifest's version is not valid: \(error.message)")
        }
        guard !keyID.isEmpty else { throw fail("the manifest names no signing key id") }
        guard chunkSize > 0 else { throw fail("the manifest's chunk size is 0") }
        guard chunkSize <= APILimits.maxChunkSize else {
            throw fail("the manifest's chunk size \(chunkSize) exceeds the limit of \(APILimits.maxChunkSize) bytes")
        }
        let needed = expectedChunkCount ?? 0
        guard needed <= UInt64(APILimits.maxChunkCount) else {
            throw fail("a \(size)-byte artifact in \(chunkSize)-byte chunks needs \(needed) chunks, more than the limit of \(APILimits.maxChunkCount)")
        }
        guard UInt64(chunkCount) == needed else {
            throw fail("the manifest lists \(chunkCount) chunk hashes but \(size) bytes in \(chunkSize)-byte chunks make \(needed)")
        }
    }

    /// Checks one chunk against this manifest: its index, its exact size and its SHA-256.
    public func verifyChunk(index: Int, bytes: some Collection<UInt8>) throws(ReleaseError) {
        guard index >= 0 && index < chunkCount else {
            throw ReleaseError(.wrongChunkIndex, "chunk \(index) does not exist: release \(version) has \(chunkCount) chunks")
        }
        let expected = size(ofChunk: index)
        guard bytes.count == expected else {
            throw ReleaseError(.wrongChunkSize, "chunk \(index) of release \(version) is \(bytes.count) bytes, expected \(expected)")
        }
        let hasher = SHA256()
        if bytes.withContiguousStorageIfAvailable({ hasher.update(UnsafeRawBufferPointer($0)) }) == nil {
            hasher.update(Array(bytes))
        }
        let digest = hasher.finalize()
        guard digest == chunkHashes[index] else {
            throw ReleaseError(.chunkHashMismatch,
                "chunk \(index) of release \(version) has SHA-256 \(digest.hex), the manifest says \(chunkHashes[index].hex)")
        }
    }

    /// `verifyChunk` for a received `Chunk`; its courtesy `sha256`, if present, must agree too.
    public func verify(_ chunk: Chunk) throws(ReleaseError) {
        let index = Int(chunk.index)
        try verifyChunk(index: index, bytes: chunk.data)
        if let claimed = chunk.sha256, claimed != chunkHashes[index] {
            throw ReleaseError(.chunkHashMismatch,
                "chunk \(index) of release \(version) claims SHA-256 \(claimed.hex), the manifest says \(chunkHashes[index].hex)")
        }
    }
}
