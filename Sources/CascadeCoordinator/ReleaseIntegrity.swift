import CascadeLog
import CascadeAPI
import CascadeCrypto
import CascadeRPC
import CascadeStore
import Synchronization

/// Releases are verified where they rest (services.md §3.6): when a push completes (the whole
/// blob's SHA-256), when a rollout starts and on demand (every chunk against the signed
/// manifest), and chunk by chunk as they are served. A damaged release is recorded as such —
/// incomplete, its intact chunks kept so a re-push of the same signed artifact sends only the
/// rest — and every active rollout of it fails at once with the reason.
extension Coordinator {
    /// Checks every chunk of a complete release's stored blob; records any damage found.
    /// Returns the record as it stands afterwards and the indices of the bad chunks.
    @discardableResult
    func verifyStored(_ version: String, actor: EventActor) async throws -> (record: ReleaseRecord, bad: [Int]) {
        let record = try await mapped {
            try await store.run { store throws(StoreError) -> ReleaseRecord in
                guard let record = try store.release(version: version), !record.isDeleted else {
                    throw StoreError(.notFound, "no release \(version)")
                }
                return record
            }
        }
        guard record.isComplete else { return (record, []) }
        let manifest = try manifests.manifest(for: record)
        let blobs = self.blobs
        // Hashing a large blob is long, blocking work: off the cooperative pool's hot path.
        let bad = await Task.detached { Self.badChunks(of: record, manifest: manifest, blobs: blobs) }.value
        metrics.chunkVerificationFailures.add(UInt64(bad.count), "store")
        guard !bad.isEmpty else { return (record, []) }
        let updated = try await recordDamage(record, manifest: manifest, bad: bad, actor: actor)
        return (updated, bad)
    }

    /// The chunks of the stored blob that do not match the manifest (all of them when the file
    /// is missing or unreadable).
    static func badChunks(of record: ReleaseRecord, manifest: Manifest, blobs: BlobStore) -> [Int] {
        guard let file = try? blobs.open(record.release.blobDigest) else { return Array(0..<manifest.chunkCount) }
        var bad: [Int] = []
        for index in 0..<manifest.chunkCount {
            let bytes = try? file.read(offset: Int64(manifest.offset(ofChunk: index)), length: manifest.size(ofChunk: index))
            if let bytes, bytes.count == manifest.size(ofChunk: index), SHA256.hash(bytes) == manifest.chunkHashes[index] { continue }
            bad.append(index)
        }
        if file.size != Int64(clamping: manifest.size), bad.isEmpty { bad.append(manifest.chunkCount - 1) }
        return bad
    }

    /// One sentence for the damage: which chunks, and how to repair it.
    static func damageReason(_ manifest: Manifest, bad: [Int], missingFile: Bool) -> String {
        let which = missingFile ? "its artifact file is missing"
            : bad.count == 1 ? "chunk \(bad[0]) of \(manifest.chunkCount) does not match its signed manifest"
            : "\(bad.count) of \(manifest.chunkCount) chunks (first \(bad[0])) do not match its signed manifest"
        return "\(which); push the same signed artifact again to repair it"
    }

    /// Records damage once (concurrent finders agree), fails the active rollouts of the release
    /// and tells their leaders to stop.
    private func recordDamage(_ record: ReleaseRecord, manifest: Manifest, bad: [Int], actor: EventActor) async throws -> ReleaseRecord {
        let version = record.version
        let missingFile = !blobs.contains(record.release.blobDigest)
        let reason = Self.damageReason(manifest, bad: bad, missingFile: missingFile)
        let intact = Set(0..<manifest.chunkCount).subtracting(bad).sorted()
        let blobs = self.blobs
        let (updated, failed) = try await mapped {
            try await store.run { store throws(StoreError) -> (ReleaseRecord, [Int64]) in
                guard let current = try store.release(version: version), current.isComplete else {
                    return (try store.requireReleaseRecord(version), [])  // another finder recorded it first
                }
                try blobs.demote(current.release.blobDigest)
                let updated = try store.markDamaged(version: version, intact: missingFile ? [] : intact, reason: reason, actor: actor)
                var failed: [Int64] = []
                for rollout in try store.activeRollouts() where rollout.releaseVersion == version {
                    _ = try store.transitionRollout(
                        id: rollout.id, to: .failed, reason: "release \(version) is damaged: \(reason)", actor: .coordinator())
                    failed.append(rollout.id)
                }
                return (updated, failed)
            }
        }
        manifests.forget(version)
        Logs.releases.error("release \(version) is damaged: \(reason)", ["release": version])
        for id in failed {
            Logs.releases.error("rollout \(id) failed: release \(version) is damaged", ["rollout": "\(id)", "release": version])
            await announceAbort(id, reason: "release \(version) is damaged: \(reason)")
        }
        return updated
    }

    /// A chunk about to be served failed its check (or could not be read): the whole release is
    /// checked once — concurrent servers of it wait for the same verdict — and the call fails.
    func chunkFailedAtServe(_ version: String, index: Int, _ problem: String) async -> RPCError {
        let first = verifying.withLock { $0.insert(version).inserted }
        if first {
            defer { _ = verifying.withLock { $0.remove(version) } }
            _ = try? await verifyStored(version, actor: .coordinator())
        }
        return RPCError(.dataLoss, "chunk \(index) of release \(version) failed its check where it rests (\(problem)); the release is marked damaged")
    }
}

extension CoordinatorStore {
    func requireReleaseRecord(_ version: String) throws(StoreError) -> ReleaseRecord {
        guard let record = try release(version: version) else { throw StoreError(.notFound, "no release \(version)") }
        return record
    }
}
