import CascadeAPI
import CascadeCoordinator
import CascadeCrypto
import CascadeRPC
import CascadeTestSupport
import Foundation
import Testing

/// Releases are verified where they rest; a damaged one is refused, fails its rollouts at once,
/// and is repaired by pushing it again (services.md §3.6).
@Suite("Release integrity where it rests")
struct ReleaseIntegrityTests {
    func blobPath(_ fixture: CoordinatorFixture, _ manifest: Manifest) -> String {
        fixture.data.file("coordinator") + "/blobs/sha256/\(manifest.sha256.hex)"
    }

    /// Flips one byte of chunk `index` in the stored blob, as a failing disk would.
    func damage(_ path: String, chunk index: Int, of manifest: Manifest) throws {
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        defer { try? handle.close() }
        let offset = manifest.offset(ofChunk: index) + 7
        try handle.seek(toOffset: offset)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: [byte ^ 0x5A])
    }

    func releases(_ fixture: CoordinatorFixture) async throws -> [String: ReleaseInfo] {
        let list = try await fixture.operatorClient.unary(OperatorService.listReleases, ListReleasesRequest()).releases
        return Dictionary(uniqueKeysWithValues: list.map { ($0.version, $0) })
    }

    func events(_ fixture: CoordinatorFixture, _ kind: String) async throws -> [Event] {
        try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events.filter { $0.kind == kind }
    }

    @Test("a flipped byte in a stored release: rollout start is refused with the reason, the release is listed damaged, and a re-push of only that chunk repairs it")
    func flippedByte() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let release = try fixture.release("1.1")
        try await fixture.push(release)
        try damage(blobPath(fixture, release.manifest), chunk: 2, of: release.manifest)
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        defer { for agent in agents.values { agent.disconnect() } }

        let refused = await #expect(throws: RPCError.self) {
            _ = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1"))
        }
        #expect(refused?.code == .failedPrecondition)
        #expect(refused?.message.contains("release 1.1 is damaged: chunk 2 of 5 does not match its signed manifest") == true, "\(refused?.message ?? "")")
        let listed = try #require(try await releases(fixture)["1.1"])
        #expect(!listed.complete && listed.damage.contains("chunk 2 of 5"))
        #expect(try await events(fixture, "release.damaged").count == 1)
        let rollouts = try await fixture.operatorClient.unary(OperatorService.listRollouts, ListRolloutsRequest()).rollouts
        #expect(rollouts.isEmpty)

        // What a resuming push sends: only the damaged chunk.
        let status = try await fixture.operatorClient.unary(OperatorService.releaseStatus, ReleaseQuery(version: "1.1"))
        #expect(status.missingChunks == [2])
        let repaired = try #require(try await fixture.push(release, indices: [2]))
        #expect(repaired.complete && repaired.damage.isEmpty)
        let verified = try await fixture.operatorClient.unary(OperatorService.verifyRelease, ReleaseQuery(version: "1.1"))
        #expect(verified.release?.complete == true && verified.missingChunks.isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: blobPath(fixture, release.manifest))) == Data(release.bytes))
        let started = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1"))
        #expect(started.state == .running || started.state == .requested)
    }

    @Test("a blob deleted during a rollout: no chunk is served, the rollout fails at once with the reason, and its leaders are told to abort")
    func deletedWhileServing() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let release = try fixture.release("1.1")
        try await fixture.push(release)
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        defer { for agent in agents.values { agent.disconnect() } }
        let started = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1"))
        try FileManager.default.removeItem(atPath: blobPath(fixture, release.manifest))

        let fetch = await #expect(throws: RPCError.self) { _ = try await fetchAll(agents["a1-01"]!.client, "1.1") }
        #expect(fetch?.code == .dataLoss)
        let failed = try await waitForRollout(fixture, started.rolloutID, .failed)
        #expect(failed.message.contains("release 1.1 is damaged: its artifact file is missing"), "\(failed.message)")
        _ = try await agents["a1-01"]!.instruction("the abort") { $0.control?.action == .abort && $0.control?.rolloutID == started.rolloutID }
        // Later fetches are refused up front, with the damage named.
        let again = await #expect(throws: RPCError.self) { _ = try await fetchAll(agents["a1-02"]!.client, "1.1") }
        #expect(again?.code == .failedPrecondition)
        #expect(again?.message.contains("is damaged") == true)
        #expect(try await releases(fixture)["1.1"]?.damage.contains("missing") == true)
    }

    @Test("a bad chunk reported against the coordinator itself makes it check what it holds")
    func reportAgainstCoordinator() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let release = try fixture.release("1.1")
        try await fixture.push(release)
        try damage(blobPath(fixture, release.manifest), chunk: 4, of: release.manifest)
        let agents = try await makeAgents(fixture, [("a1-01", 0.9)])
        defer { for agent in agents.values { agent.disconnect() } }
        _ = try await agents["a1-01"]!.client.unary(CoordinatorService.reportFault, FaultReport(
            rolloutID: 0, sourceID: "", releaseVersion: "1.1", chunkIndex: 4, detail: "chunk-hash-mismatch"))
        #expect(try await releases(fixture)["1.1"]?.damage.contains("chunk 4 of 5") == true)
    }

    @Test("release delete: refused while a rollout runs it, a tombstone while finished rollouts name it, gone otherwise; the same push brings it back")
    func deleteRelease() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let used = try fixture.release("1.1"), unused = try fixture.release("1.2")
        try await fixture.push(used)
        try await fixture.push(unused)
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        defer { for agent in agents.values { agent.disconnect() } }
        let rollout = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1"))

        let busy = await #expect(throws: RPCError.self) {
            _ = try await fixture.operatorClient.unary(OperatorService.deleteRelease, ReleaseQuery(version: "1.1"))
        }
        #expect(busy?.code == .failedPrecondition)
        #expect(busy?.message.contains("used by rollout \(rollout.rolloutID)") == true)

        _ = try await fixture.operatorClient.unary(OperatorService.deleteRelease, ReleaseQuery(version: "1.2"))
        #expect(!FileManager.default.fileExists(atPath: blobPath(fixture, unused.manifest)))
        _ = try await fixture.operatorClient.unary(OperatorService.abortRollout, RolloutControlRequest(rolloutID: rollout.rolloutID))
        _ = try await fixture.operatorClient.unary(OperatorService.deleteRelease, ReleaseQuery(version: "1.1"))
        #expect(try await releases(fixture).isEmpty)
        let gone = await #expect(throws: RPCError.self) {
            _ = try await fixture.operatorClient.unary(OperatorService.showRelease, ReleaseQuery(version: "1.1"))
        }
        #expect(gone?.code == .notFound)
        // The aborted rollout's history still names it.
        #expect(try await rolloutStatus(fixture, rollout.rolloutID).releaseVersion == "1.1")
        // Pushed again, the same signed release comes back whole.
        let revived = try #require(try await fixture.push(used))
        #expect(revived.complete)
        #expect(try await releases(fixture).keys.sorted() == ["1.1"])
        #expect(try await events(fixture, "release.deleted").count == 2)
    }
}
