import CascadeCrypto

extension CoordinatorStore {
    private static let releaseColumns = """
        version, name, manifest, signature, key_id, blob_digest, size, chunk_size, chunk_count,
        created_ms, stored_ms, complete, pushed_by, damage, deleted_ms FROM releases
        """

    private static func releaseRecord(_ row: Row) throws(StoreError) -> ReleaseRecord {
        guard let digest = SHA256Digest(hex: row.text(5)) else {
            throw StoreError(.corrupt, "release '\(row.text(0))' has a malformed blob digest '\(row.text(5))'")
        }
        let release = NewRelease(
            version: row.text(0), name: row.text(1), manifest: row.blob(2), signature: row.blob(3), keyID: row.text(4),
            blobDigest: digest, size: row.int64(6), chunkSize: row.int(7), chunkCount: row.int(8), createdAt: row.timestamp(9))
        return ReleaseRecord(
            release: release, storedAt: row.timestamp(10), isComplete: row.bool(11), pushedBy: row.text(12),
            damage: row.text(13), isDeleted: row.optionalTimestamp(14) != nil)
    }

    public func release(version: String) throws(StoreError) -> ReleaseRecord? {
        try database.queryOne("SELECT \(Self.releaseColumns) WHERE version = ?", [.text(version)], Self.releaseRecord)
    }

    /// Every release not deleted, oldest push first.
    public func releases(includeIncomplete: Bool = true) throws(StoreError) -> [ReleaseRecord] {
        try database.query(
            "SELECT \(Self.releaseColumns) WHERE (complete = 1 OR ?) AND deleted_ms IS NULL ORDER BY stored_ms, version",
            [.bool(includeIncomplete)], Self.releaseRecord)
    }

    /// Starts (or resumes) a push: records the verified manifest as an incomplete release.
    /// Pushing the same manifest and signature again returns the existing row, so an
    /// interrupted push resumes; a different release under the same version is refused.
    @discardableResult
    public func createRelease(_ release: NewRelease, actor: EventActor) throws(StoreError) -> ReleaseRecord {
        try Self.validate(release)
        return try database.transaction { () throws(StoreError) -> ReleaseRecord in
            if let existing = try self.release(version: release.version) {
                guard existing.release == release else {
                    throw StoreError(.alreadyExists, "release \(release.version) already exists with a different manifest")
                }
                if existing.isDeleted {
                    // The same signed release pushed again after a delete: it comes back.
                    try database.execute("UPDATE releases SET deleted_ms = NULL, stored_ms = ? WHERE version = ?", [.time(clock()), .text(release.version)])
                    return try requireRelease(release.version)
                }
                return existing
            }
            try database.execute(
                """
                INSERT INTO releases (version, name, manifest, signature, key_id, blob_digest, size, chunk_size,
                                      chunk_count, created_ms, stored_ms, complete, pushed_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)
                """,
                [.text(release.version), .text(release.name), .blob(release.manifest), .blob(release.signature),
                 .text(release.keyID), .text(release.blobDigest.hex), .integer(release.size), .int(release.chunkSize),
                 .int(release.chunkCount), .time(release.createdAt), .time(clock()), .text(actor.id)])
            try appendEvent(
                actor: actor, kind: .releaseCreated, subject: EventSubject.release(release.version),
                detail: "\(release.name) \(release.version): \(release.size) bytes in \(release.chunkCount) chunks, "
                    + "sha256 \(release.blobDigest.hex), key \(release.keyID)")
            guard let stored = try self.release(version: release.version) else {
                throw StoreError(.sqlite, "release \(release.version) vanished after its insert")
            }
            return stored
        }
    }

    /// Records that chunk `index` is written and fsynced in the partial blob. Returns false if it
    /// was already recorded (a resumed push re-sending it) or the release is complete.
    @discardableResult
    public func recordChunk(version: String, index: Int) throws(StoreError) -> Bool {
        let release = try requireRelease(version)
        guard !release.isComplete else { return false }
        guard (0..<release.release.chunkCount).contains(index) else {
            throw StoreError(.invalidArgument, "release \(version) has \(release.release.chunkCount) chunks; there is no chunk \(index)")
        }
        return try database.execute(
            "INSERT OR IGNORE INTO release_chunks (release_version, chunk_index, received_ms) VALUES (?, ?, ?)",
            [.text(version), .int(index), .time(clock())]) == 1
    }

    /// Indices of the chunks recorded so far, ascending (all of them once complete).
    public func receivedChunks(version: String) throws(StoreError) -> [Int] {
        let release = try requireRelease(version)
        if release.isComplete { return Array(0..<release.release.chunkCount) }
        return try database.query(
            "SELECT chunk_index FROM release_chunks WHERE release_version = ? ORDER BY chunk_index", [.text(version)]
        ) { $0.int(0) }
    }

    /// Indices still to push, ascending: what a resumed push sends.
    public func missingChunks(version: String) throws(StoreError) -> [Int] {
        let release = try requireRelease(version)
        let received = Set(try receivedChunks(version: version))
        return (0..<release.release.chunkCount).filter { !received.contains($0) }
    }

    /// Marks the release complete (its blob is stored and verified) and drops its chunk rows.
    public func completeRelease(version: String, actor: EventActor) throws(StoreError) -> ReleaseRecord {
        try database.transaction { () throws(StoreError) -> ReleaseRecord in
            let release = try requireRelease(version)
            if release.isComplete { return release }
            let missing = try missingChunks(version: version)
            guard missing.isEmpty else {
                throw StoreError(.failedPrecondition, "release \(version) is missing \(missing.count) of \(release.release.chunkCount) chunks")
            }
            try database.execute("UPDATE releases SET complete = 1, damage = '' WHERE version = ?", [.text(version)])
            try database.execute("DELETE FROM release_chunks WHERE release_version = ?", [.text(version)])
            try appendEvent(
                actor: actor, kind: .releaseCompleted, subject: EventSubject.release(version),
                detail: "\(version): stored and verified sha256 \(release.release.blobDigest.hex)")
            return try requireRelease(version)
        }
    }

    /// Forgets the chunks of an incomplete release (its partial blob failed verification).
    public func resetChunks(version: String) throws(StoreError) {
        try database.execute("DELETE FROM release_chunks WHERE release_version = ?", [.text(version)])
    }

    /// Deletes a release no active rollout uses. One that finished rollouts refer to stays as a
    /// tombstone (their history names it); pushing the same signed manifest again revives it.
    /// The blob files are the caller's to remove (another release may share their content).
    public func deleteRelease(version: String, actor: EventActor) throws(StoreError) {
        try database.transaction { () throws(StoreError) in
            let record = try requireRelease(version)
            guard !record.isDeleted else { throw StoreError(.notFound, "no release \(version)") }
            if let active = try activeRollouts().first(where: { $0.releaseVersion == version }) {
                throw StoreError(.failedPrecondition, "release \(version) is used by rollout \(active.id), which is \(active.state.rawValue); finish or abort it first")
            }
            let uses = try database.queryOne("SELECT count(*) FROM rollouts WHERE release_version = ?", [.text(version)]) { $0.int(0) } ?? 0
            try database.execute("DELETE FROM release_chunks WHERE release_version = ?", [.text(version)])
            if uses == 0 {
                try database.execute("DELETE FROM releases WHERE version = ?", [.text(version)])
            } else {
                try database.execute(
                    "UPDATE releases SET complete = 0, damage = '', deleted_ms = ? WHERE version = ?", [.time(clock()), .text(version)])
            }
            try appendEvent(actor: actor, kind: .releaseDeleted, subject: EventSubject.release(version), detail: "\(version) deleted")
        }
    }

    /// Records that the stored blob of `version` failed verification: the release is no longer
    /// complete, only the chunks in `intact` count as held (so a re-push of the same signed
    /// artifact sends the others), and an event says why. The caller has moved the blob back
    /// to its partial place.
    @discardableResult
    public func markDamaged(version: String, intact: [Int], reason: String, actor: EventActor) throws(StoreError) -> ReleaseRecord {
        try database.transaction { () throws(StoreError) -> ReleaseRecord in
            let record = try requireRelease(version)
            try database.execute("UPDATE releases SET complete = 0, damage = ? WHERE version = ?", [.text(reason), .text(version)])
            try database.execute("DELETE FROM release_chunks WHERE release_version = ?", [.text(version)])
            let now = clock()
            for index in intact where (0..<record.release.chunkCount).contains(index) {
                try database.execute(
                    "INSERT INTO release_chunks (release_version, chunk_index, received_ms) VALUES (?, ?, ?)",
                    [.text(version), .int(index), .time(now)])
            }
            try appendEvent(actor: actor, kind: .releaseDamaged, subject: EventSubject.release(version), detail: "\(version): \(reason)")
            return try requireRelease(version)
        }
    }

    func requireRelease(_ version: String) throws(StoreError) -> ReleaseRecord {
        guard let release = try release(version: version) else {
            throw StoreError(.notFound, "no release \(version)")
        }
        return release
    }

    static func validate(_ release: NewRelease) throws(StoreError) {
        func check(_ ok: Bool, _ message: String) throws(StoreError) {
            if !ok { throw StoreError(.invalidArgument, "release \(release.version): \(message)") }
        }
        try check((1...128).contains(release.version.utf8.count), "the version must be 1...128 bytes")
        try check(release.size >= 0, "the size must not be negative")
        try check(release.chunkSize > 0, "the chunk size must be positive")
        let expected = (release.size + Int64(release.chunkSize) - 1) / Int64(release.chunkSize)
        try check(Int64(release.chunkCount) == expected,
                  "\(release.size) bytes in chunks of \(release.chunkSize) make \(expected) chunks, not \(release.chunkCount)")
    }
}
