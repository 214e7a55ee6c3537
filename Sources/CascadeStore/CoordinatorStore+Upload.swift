extension CoordinatorStore {
    /// Stores one chunk of a push — the chunk's hash is already checked against the verified
    /// manifest by the caller. The bytes are written and fsynced in the partial blob *before*
    /// the chunk is recorded, so a recorded chunk is always on disk; a crash in between only
    /// makes the push re-send it. Returns false if the chunk was already stored.
    @discardableResult
    public func storeChunk(version: String, index: Int, bytes: [UInt8], blobs: BlobStore) throws(StoreError) -> Bool {
        let record = try requireRelease(version)
        if record.isComplete { return false }
        let release = record.release
        guard (0..<release.chunkCount).contains(index) else {
            throw StoreError(.invalidArgument, "release \(version) has \(release.chunkCount) chunks; there is no chunk \(index)")
        }
        let expected = release.length(ofChunk: index)
        guard bytes.count == expected else {
            throw StoreError(.invalidArgument, "chunk \(index) of release \(version) is \(bytes.count) bytes; the manifest says \(expected)")
        }
        let recorded = try database.queryOne(
            "SELECT 1 FROM release_chunks WHERE release_version = ? AND chunk_index = ?", [.text(version), .int(index)]) { _ in true }
        if recorded != nil { return false }
        try blobs.writePartial(release.blobDigest, at: Int64(index) * Int64(release.chunkSize), bytes: bytes)
        return try recordChunk(version: version, index: index)
    }

    /// Finishes a push once every chunk is stored: verifies the whole partial blob against the
    /// manifest's digest and size, moves it to its content address, and marks the release
    /// complete. On a mismatch the partial blob and the chunk rows are dropped (the push starts
    /// over) and the error is `.corrupt`.
    public func finishRelease(version: String, blobs: BlobStore, actor: EventActor) throws(StoreError) -> ReleaseRecord {
        let record = try requireRelease(version)
        if record.isComplete { return record }
        let missing = try missingChunks(version: version)
        guard missing.isEmpty else {
            throw StoreError(.failedPrecondition, "release \(version) is missing \(missing.count) of \(record.release.chunkCount) chunks")
        }
        do {
            try blobs.commitPartial(record.release.blobDigest, size: record.release.size)
        } catch where error.code == .corrupt {
            blobs.removePartial(record.release.blobDigest)
            try resetChunks(version: version)
            throw error
        }
        return try completeRelease(version: version, actor: actor)
    }
}
