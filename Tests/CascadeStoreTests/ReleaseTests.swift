@testable import CascadeStore
import CascadeCrypto
import Testing

@Suite("Releases and resumable pushes")
struct ReleaseTests {
    let fixture: StoreFixture
    let blobs: BlobStore
    let content: [UInt8] = Array("abcdefghij".utf8)  // 10 bytes: chunks of 4, 4, 2
    let release: NewRelease

    init() throws {
        fixture = try StoreFixture()
        blobs = try BlobStore(dataDirectory: fixture.directory.path)
        release = NewRelease(
            version: "1.2.0", name: "cascade-agent", manifest: Array("signed manifest".utf8), signature: Array(repeating: 7, count: 64),
            keyID: "a1b2c3d4e5f60718", blobDigest: CascadeCrypto.SHA256.hash(Array("abcdefghij".utf8)), size: 10, chunkSize: 4,
            chunkCount: 3, createdAt: Timestamp(milliseconds: 1_600_000_000_000))
    }

    func chunk(_ index: Int) -> [UInt8] { Array(content[(index * 4)..<min(10, index * 4 + 4)]) }

    @Test("a push is recorded, resumed from its missing chunks, verified and completed")
    func push() throws {
        let store = fixture.store
        let created = try store.createRelease(release, actor: .operator("alice"))
        #expect(created.release == release)
        #expect(!created.isComplete)
        #expect(created.storedAt == fixture.clock.timestamp)
        #expect(created.pushedBy == "alice")
        #expect(try store.storeChunk(version: "1.2.0", index: 2, bytes: chunk(2), blobs: blobs))
        #expect(try store.storeChunk(version: "1.2.0", index: 0, bytes: chunk(0), blobs: blobs))
        #expect(try !store.storeChunk(version: "1.2.0", index: 0, bytes: chunk(0), blobs: blobs))

        // The push is interrupted; the same manifest resumes it, even from another operator
        // (the release still records who started it).
        #expect(try store.createRelease(release, actor: .operator("bob")) == created)
        #expect(try store.receivedChunks(version: "1.2.0") == [0, 2])
        #expect(try store.missingChunks(version: "1.2.0") == [1])
        #expect(throws: StoreError(.failedPrecondition, "release 1.2.0 is missing 1 of 3 chunks")) {
            try store.finishRelease(version: "1.2.0", blobs: blobs, actor: .operator("alice"))
        }
        try store.storeChunk(version: "1.2.0", index: 1, bytes: chunk(1), blobs: blobs)
        let done = try store.finishRelease(version: "1.2.0", blobs: blobs, actor: .operator("alice"))
        #expect(done.isComplete)
        #expect(try blobs.read(release.blobDigest, offset: 0, length: 100) == content)
        #expect(!blobs.contains(CascadeCrypto.SHA256.hash([])))
        #expect(try store.receivedChunks(version: "1.2.0") == [0, 1, 2])
        #expect(try store.database.queryOne("SELECT count(*) FROM release_chunks") { $0.int(0) } == 0)
        #expect(try store.releases().map(\.version) == ["1.2.0"])
        #expect(try fixture.eventDetails(.releaseCreated) == [
            "cascade-agent 1.2.0: 10 bytes in 3 chunks, sha256 \(release.blobDigest.hex), key a1b2c3d4e5f60718",
        ])
        #expect(try fixture.eventDetails(.releaseCompleted) == ["\(release.version): stored and verified sha256 \(release.blobDigest.hex)"])
    }

    @Test("a different release under an existing version, bad chunk sizes and indices are refused")
    func refusals() throws {
        let store = fixture.store
        try store.createRelease(release, actor: .operator("alice"))
        var other = release
        other.signature = Array(repeating: 8, count: 64)
        #expect(throws: StoreError(.alreadyExists, "release 1.2.0 already exists with a different manifest")) {
            try store.createRelease(other, actor: .operator("alice"))
        }
        #expect(throws: StoreError(.invalidArgument, "chunk 2 of release 1.2.0 is 3 bytes; the manifest says 2")) {
            try store.storeChunk(version: "1.2.0", index: 2, bytes: [1, 2, 3], blobs: blobs)
        }
        #expect(throws: StoreError(.invalidArgument, "release 1.2.0 has 3 chunks; there is no chunk 3")) {
            try store.storeChunk(version: "1.2.0", index: 3, bytes: [], blobs: blobs)
        }
        var miscounted = release
        miscounted.version = "1.3.0"
        miscounted.chunkCount = 2
        #expect(throws: StoreError(.invalidArgument, "release 1.3.0: 10 bytes in chunks of 4 make 3 chunks, not 2")) {
            try store.createRelease(miscounted, actor: .operator("alice"))
        }
        #expect(throws: StoreError(.notFound, "no release 7.0.0")) { try store.missingChunks(version: "7.0.0") }
    }

    @Test("a partial blob whose bytes do not hash to the manifest is dropped and the push starts over")
    func corruptPartial() throws {
        let store = fixture.store
        try store.createRelease(release, actor: .operator("alice"))
        try store.storeChunk(version: "1.2.0", index: 0, bytes: chunk(0), blobs: blobs)
        try store.storeChunk(version: "1.2.0", index: 1, bytes: Array("EFGH".utf8), blobs: blobs)  // not the signed bytes
        try store.storeChunk(version: "1.2.0", index: 2, bytes: chunk(2), blobs: blobs)
        let error = #expect(throws: StoreError.self) { try store.finishRelease(version: "1.2.0", blobs: blobs, actor: .operator("alice")) }
        #expect(error?.code == .corrupt)
        #expect(error?.message == "partial blob \(release.blobDigest.hex) hashes to \(CascadeCrypto.SHA256.hash(Array("abcdEFGHij".utf8)).hex); the manifest says \(release.blobDigest.hex)")
        #expect(try store.missingChunks(version: "1.2.0") == [0, 1, 2])
        #expect(FileIO.size(blobs.partialPath(of: release.blobDigest)) == nil)
        #expect(!blobs.contains(release.blobDigest))
        #expect(try store.release(version: "1.2.0")?.isComplete == false)
    }

    @Test("an empty release completes with no chunks, and deleting a release in use is refused")
    func emptyAndDelete() throws {
        let empty = NewRelease(
            version: "0.0.1", name: "empty", manifest: [1], signature: [2], keyID: "k", blobDigest: CascadeCrypto.SHA256.hash([]),
            size: 0, chunkSize: 4, chunkCount: 0, createdAt: fixture.clock.timestamp)
        try fixture.store.createRelease(empty, actor: .operator("alice"))
        #expect(try fixture.store.finishRelease(version: "0.0.1", blobs: blobs, actor: .operator("alice")).isComplete)
        #expect(try blobs.size(of: empty.blobDigest) == 0)
        try fixture.register("a1", "127.0.1.1")
        _ = try fixture.store.createRollout(release: "0.0.1", policy: RolloutPolicy(), actor: .operator("alice"))
        #expect(throws: StoreError(.failedPrecondition, "release 0.0.1 is used by rollout 1, which is requested; finish or abort it first")) {
            try fixture.store.deleteRelease(version: "0.0.1", actor: .operator("alice"))
        }
        try fixture.store.createRelease(release, actor: .operator("alice"))
        try fixture.store.storeChunk(version: "1.2.0", index: 0, bytes: chunk(0), blobs: blobs)
        try fixture.store.deleteRelease(version: "1.2.0", actor: .operator("alice"))
        #expect(try fixture.store.release(version: "1.2.0") == nil)
        #expect(try fixture.store.database.queryOne("SELECT count(*) FROM release_chunks") { $0.int(0) } == 0)
    }
}
