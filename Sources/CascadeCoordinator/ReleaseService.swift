import CascadeLog
import CascadeAPI
import CascadeCrypto
import CascadeRPC
import CascadeStore

/// Releases: push (verified, resumable), status, list, show. Operators only (the methods'
/// role lists); every change is an event with the operator's identity.
extension Coordinator {
    func registerReleaseMethods(on router: RPCRouter) {
        router.clientStreaming(OperatorService.pushRelease) { requests, context in
            try await self.push(requests, context)
        }
        router.unary(OperatorService.releaseStatus) { query, _ in
            try await mapped {
                try await self.store.run { store throws(StoreError) -> ReleaseStatusResponse in
                    // What the coordinator holds of a version it has no manifest for is nothing:
                    // an answer without `release` (services.md §3.6), not NOT_FOUND, so a push
                    // asks once and learns what to send in every case. A deleted release holds
                    // nothing either.
                    guard let record = try store.release(version: query.version), !record.isDeleted else { return ReleaseStatusResponse() }
                    let present = try store.receivedChunks(version: query.version)
                    return ReleaseStatusResponse(release: record.info(chunksPresent: record.isComplete ? record.release.chunkCount : present.count),
                                                 present: record.isComplete ? Array(0..<record.release.chunkCount) : present)
                }
            }
        }
        router.unary(OperatorService.listReleases) { _, _ in
            try await mapped {
                try await self.store.run { store throws(StoreError) -> ListReleasesResponse in
                    var infos: [ReleaseInfo] = []
                    // Newest first, as services.md says (the store lists in push order).
                    for record in try store.releases().reversed() {
                        let present = record.isComplete ? record.release.chunkCount : try store.receivedChunks(version: record.version).count
                        infos.append(record.info(chunksPresent: present))
                    }
                    return ListReleasesResponse(releases: infos)
                }
            }
        }
        router.unary(OperatorService.verifyRelease) { query, context in
            let actor = EventActor.operator(context.peer?.id ?? "unknown")
            let (record, bad) = try await self.verifyStored(query.version, actor: actor)
            let present = try await mapped {
                try await self.store.run { store throws(StoreError) in try store.receivedChunks(version: query.version) }
            }
            if bad.isEmpty && record.isComplete { Logs.releases.info("release \(query.version) verified by \(actor): every chunk matches its manifest") }
            return ReleaseStatusResponse(release: record.info(chunksPresent: present.count), present: present)
        }
        router.unary(OperatorService.deleteRelease) { query, context in
            let actor = EventActor.operator(context.peer?.id ?? "unknown")
            let blobs = self.blobs
            let record = try await mapped {
                try await self.store.run { store throws(StoreError) -> ReleaseRecord in
                    guard let record = try store.release(version: query.version), !record.isDeleted else {
                        throw StoreError(.notFound, "no release \(query.version)")
                    }
                    try store.deleteRelease(version: query.version, actor: actor)
                    // The content may be another version's too (the same artifact): keep it then.
                    let shared = try store.releases().contains { $0.release.blobDigest == record.release.blobDigest }
                    if !shared {
                        try blobs.remove(record.release.blobDigest)
                        blobs.removePartial(record.release.blobDigest)
                    }
                    return record
                }
            }
            self.manifests.forget(query.version)
            Logs.releases.info("release \(query.version) deleted by \(actor)", ["release": query.version, "actor": "\(actor)"])
            return ReleaseStatusResponse(release: record.info(chunksPresent: 0))
        }
        router.unary(OperatorService.showRelease) { query, _ in
            try await mapped {
                try await self.store.run { store throws(StoreError) -> ShowReleaseResponse in
                    guard let record = try store.release(version: query.version), !record.isDeleted else { throw StoreError(.notFound, "no release \(query.version)") }
                    let present = record.isComplete ? record.release.chunkCount : try store.receivedChunks(version: record.version).count
                    return ShowReleaseResponse(release: record.info(chunksPresent: present), signedManifest: record.signedManifest)
                }
            }
        }
    }

    /// The first message carries the signed manifest, the rest carry chunks (any order, any
    /// subset: a resumed push sends only what ReleaseStatus says is missing). The release
    /// completes when every chunk is stored and the whole artifact verifies.
    private func push(_ requests: MessageStream<PushReleaseRequest>, _ context: ServerContext) async throws -> PushReleaseResponse {
        let actor = EventActor.operator(context.peer?.id ?? "unknown")
        var manifest: Manifest?
        var version = ""
        for try await request in requests {
            if let signed = request.signedManifest {
                guard manifest == nil else { throw APIError.invalid("a push carries one signed manifest, first") }
                let verified = try mapped { try verifier.verify(signed) }
                // Agents install only their own program: another's release could never roll out,
                // and would take the version from the real one.
                guard verified.name == configuration.programName else {
                    throw RPCError(.invalidArgument, "wrong-program: the manifest is for \"\(verified.name.prefix(64))\", and this fleet's agents run \"\(configuration.programName)\"")
                }
                do {
                    _ = try ReleaseVersion(verified.version)
                } catch {
                    throw error.rpcError
                }
                version = verified.version
                try await mapped { try await record(signed, verified, actor: actor) }
                manifest = verified
            }
            if let chunk = request.chunk {
                guard let manifest else { throw APIError.invalid("the signed manifest must come before the chunks") }
                try mapped { try metrics.verifyPushed(chunk, against: manifest) }
                let index = Int(chunk.index)
                let data = chunk.data
                let blobs = self.blobs
                let stored = version
                _ = try await mapped {
                    try await store.run { store throws(StoreError) in
                        try store.storeChunk(version: stored, index: index, bytes: data, blobs: blobs)
                    }
                }
                metrics.releaseBytesReceived.add(UInt64(data.count), stored)
            }
        }
        guard manifest != nil else { throw APIError.invalid("the push carried no signed manifest") }
        let blobs = self.blobs
        let stored = version
        let info = try await mapped {
            try await store.run { store throws(StoreError) -> ReleaseInfo in
                let missing = try store.missingChunks(version: stored)
                if missing.isEmpty {
                    let record = try store.finishRelease(version: stored, blobs: blobs, actor: actor)
                    return record.info(chunksPresent: record.release.chunkCount)
                }
                guard let record = try store.release(version: stored) else {
                    throw StoreError(.notFound, "release \(stored) disappeared during its push")
                }
                return record.info(chunksPresent: record.release.chunkCount - missing.count)
            }
        }
        if info.complete { Logs.releases.info("release \(version) is complete (pushed by \(actor))", ["release": version, "actor": "\(actor)"]) }
        return PushReleaseResponse(release: info)
    }

    /// Creates the release row, or accepts a resumed push of the very same signed manifest.
    private func record(_ signed: SignedManifest, _ manifest: Manifest, actor: EventActor) async throws {
        let release = NewRelease(
            version: manifest.version, name: manifest.name, manifest: signed.manifestBytes, signature: signed.signature,
            keyID: signed.keyID, blobDigest: manifest.sha256, size: Int64(clamping: manifest.size), chunkSize: Int(manifest.chunkSize),
            chunkCount: manifest.chunkCount, createdAt: Timestamp(milliseconds: Int64(clamping: manifest.createdAt) * 1000))
        let pushed = try? ReleaseVersion(manifest.version)
        try await store.run { store throws(StoreError) in
            // 1.1 and 1.1.0 are one version to agents (services.md §4.4): a second spelling
            // would be a second release of it, and which one a rollout means would be a guess.
            if try store.release(version: release.version) == nil, let pushed,
               let twin = try store.releases().first(where: { (try? ReleaseVersion($0.release.version)) == pushed }) {
                throw StoreError(.alreadyExists,
                    "release \(twin.release.version) already exists, and \(release.version) is the same version spelled differently; push it as \(twin.release.version) or choose a new version")
            }
            if let existing = try store.release(version: release.version) {
                guard existing.release.manifest == release.manifest, existing.release.signature == release.signature else {
                    throw StoreError(.alreadyExists, "release \(release.version) already exists with a different manifest")
                }
                // A deleted release pushed again comes back (createRelease revives it).
                if !existing.isDeleted { return }
            }
            _ = try store.createRelease(release, actor: actor)
        }
    }
}
