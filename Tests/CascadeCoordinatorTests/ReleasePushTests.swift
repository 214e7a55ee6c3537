import CascadeAPI
import CascadeCoordinator
import CascadeCrypto
import CascadeRPC
import CascadeTestSupport
import Foundation
import Testing

@Suite("Coordinator releases")
struct ReleasePushTests {
    @Test("a pushed release is verified, stored content-addressed and listed as complete")
    func push() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let release = try fixture.release("1.1")
        let info = try #require(try await fixture.push(release))
        #expect(info.complete)
        #expect(info.chunkCount == 5)
        #expect(info.sha256 == SHA256.hash(release.bytes))
        // manifest_sha256 covers the manifest bytes as signed, not the SignedManifest message
        // (services.md §4.2): the digest agents compare an expectation with.
        #expect(info.manifestSHA256 == SHA256.hash(release.signed.manifestBytes))
        #expect(info.manifestSHA256 != SHA256.hash(release.signed.serializedBytes()))
        let blob = fixture.data.file("coordinator/blobs/sha256/\(SHA256.hash(release.bytes).hex)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: blob)) == Data(release.bytes))
        let list = try await fixture.operatorClient.unary(OperatorService.listReleases, ListReleasesRequest())
        #expect(list.releases.map(\.version) == ["1.1"])
        // Who pushed it comes from the operator's certificate (cascade://operator/alice).
        #expect(list.releases.map(\.pushedBy) == ["alice"])
        // The manifest an agent gets is the signed one, byte for byte.
        let agent = try fixture.agentClient("a1-01")
        let signed = try await agent.unary(CoordinatorService.getRelease, GetReleaseRequest(version: "1.1"))
        #expect(signed == release.signed)
        agent.close()
    }

    @Test("an interrupted push resumes with only the missing chunks")
    func resume() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let release = try fixture.release("1.1")
        let partial = try #require(try await fixture.push(release, indices: [0, 2]))
        #expect(!partial.complete)
        #expect(partial.chunksPresent == 2)
        let status = try await fixture.operatorClient.unary(OperatorService.releaseStatus, ReleaseQuery(version: "1.1"))
        #expect(status.missingChunks == [1, 3, 4])
        let done = try #require(try await fixture.push(release, indices: status.missingChunks))
        #expect(done.complete)
    }

    @Test("releases are refused with exact errors", arguments: ["unknown key", "tampered manifest", "tampered chunk", "other program"])
    func rejections(kind: String) async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let stranger = try Ed25519PrivateKey.generate()
        var release = try fixture.release("1.1", key: kind == "unknown key" ? stranger : nil)
        if kind == "tampered manifest" { release.signed.manifestBytes[release.signed.manifestBytes.count - 1] ^= 1 }
        if kind == "other program" {
            release.manifest.name = "cascade-other"
            release.signed = try SignedManifest.sign(release.manifest, with: fixture.signingKey)
        }
        let error = await #expect(throws: RPCError.self) {
            try await fixture.push(release, tamper: kind == "tampered chunk" ? 3 : nil)
        }
        switch kind {
        case "unknown key":
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("signed by key \"\(stranger.publicKey.keyID)\", which is not a pinned release key") == true)
        case "tampered manifest":
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("signature") == true)
        case "other program":
            #expect(error?.code == .invalidArgument)
            #expect(error?.message == "wrong-program: the manifest is for \"cascade-other\", and this fleet's agents run \"cascade-agent\"")
        default:
            #expect(error?.code == .dataLoss)
            #expect(error?.message.contains("chunk 3") == true)
        }
        let list = try await fixture.operatorClient.unary(OperatorService.listReleases, ListReleasesRequest())
        #expect(list.releases.allSatisfy { !$0.complete })
    }

    @Test("an agent certificate calling an operator method gets PERMISSION_DENIED")
    func agentIsNotOperator() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let agent = try fixture.agentClient("a1-01")
        let error = await #expect(throws: RPCError.self) {
            _ = try await agent.unary(OperatorService.listReleases, ListReleasesRequest())
        }
        #expect(error?.code == .permissionDenied)
        #expect(error?.message.contains("agent a1-01") == true)
        agent.close()
    }
}
