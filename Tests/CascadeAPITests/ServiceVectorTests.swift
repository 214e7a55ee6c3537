@testable import CascadeAPI
import CascadeCrypto
import CascadeWire
import Testing

@Suite("Service vectors (Protocols/vectors/services.txt)")
struct ServiceVectorTests {
    @Test("services.txt is found and has every section")
    func sections() {
        #expect(ServiceVectors.kind("key").count == 2)
        #expect(ServiceVectors.kind("ok").count >= 20)
        #expect(ServiceVectors.kind("older").count >= 3)
        #expect(ServiceVectors.kind("newer").count >= 3)
        #expect(ServiceVectors.kind("bad").count >= 8)
        #expect(ServiceVectors.kind("release").count >= 8)
        #expect(ServiceVectors.kind("chunk").count >= 6)
        let names = ServiceVectors.all.map(\.name)
        #expect(Set(names).count == names.count, "vector names are unique")
        for schema in Set(ServiceVectors.all.filter { ["ok", "older", "newer", "bad"].contains($0.kind) }.map { $0.columns[0] }) {
            #expect(Schema.byName[schema] != nil, "schema \(schema) is not a message of services.md")
        }
    }

    @Test("golden and older-schema messages match their fields and re-encode byte for byte",
          arguments: ServiceVectors.kind("ok") + ServiceVectors.kind("older"))
    func golden(_ vector: ServiceVector) throws {
        let bytes = try vector.hex(1)
        #expect(try FieldNotation.encode(vector.columns[2]) == bytes, "the hex is not the fields column")
        #expect(try Schema.named(vector.columns[0]).reencode(bytes) == bytes)
    }

    @Test("newer-schema messages decode with unknown fields skipped", arguments: ServiceVectors.kind("newer"))
    func newer(_ vector: ServiceVector) throws {
        let canonical = try vector.hex(3)
        #expect(try FieldNotation.encode(vector.columns[2]) == canonical, "the canonical hex is not the fields column")
        #expect(try Schema.named(vector.columns[0]).reencode(vector.hex(1)) == canonical)
    }

    @Test("malformed messages fail with the stated code and condition", arguments: ServiceVectors.kind("bad"))
    func bad(_ vector: ServiceVector) throws {
        let bytes = try vector.hex(1)
        let schema = try Schema.named(vector.columns[0])
        let error = try #require(captureError(WireError.self) { _ = try schema.reencode(bytes) })
        #expect(error.code.name == vector.columns[2])
        #expect(error.kind.rawValue == vector.columns[3])
    }

    @Test("the test keys have the stated public keys and key ids", arguments: ServiceVectors.kind("key"))
    func keys(_ vector: ServiceVector) throws {
        let key = try ServiceVectors.key(vector.name)
        #expect(key.publicKey.rawRepresentation == (try vector.hex(1)))
        #expect(key.publicKey.keyID == vector.columns[2])
    }

    @Test("signed manifests verify, or fail with the stated rule", arguments: ServiceVectors.kind("release"))
    func release(_ vector: ServiceVector) throws {
        let signed = try SignedManifest(serializedBytes: vector.hex(0))
        #expect(signed.serializedBytes() == (try vector.hex(0)))
        let pinned = try vector.columns[1].split(separator: ",").map { try ServiceVectors.key(String($0)).publicKey }
        let verifier = ReleaseVerifier(trustedKeys: pinned)
        if vector.columns[2] == "ok" {
            _ = try verifier.verify(signed)
        } else {
            let error = try #require(captureError(ReleaseError.self) { _ = try verifier.verify(signed) })
            #expect(error.code.name == vector.columns[2], "\(error)")
        }
    }

    @Test("chunks pass or fail their check against the release-ok manifest", arguments: ServiceVectors.kind("chunk"))
    func chunk(_ vector: ServiceVector) throws {
        let manifest = try Self.releaseOK()
        let chunk = try Chunk(serializedBytes: vector.hex(0))
        #expect(chunk.serializedBytes() == (try vector.hex(0)))
        if vector.columns[1] == "ok" {
            try manifest.verify(chunk)
        } else {
            let error = try #require(captureError(ReleaseError.self) { try manifest.verify(chunk) })
            #expect(error.code.name == vector.columns[1], "\(error)")
        }
    }

    static func releaseOK() throws -> Manifest {
        let signed = try SignedManifest(serializedBytes: ServiceVectors.named("release-ok").hex(0))
        return try ReleaseVerifier(trustedKeys: [ServiceVectors.key("test-release-key").publicKey]).verify(signed)
    }

    @Test("building and signing the test artifact reproduces the manifest and signed-manifest vectors exactly")
    func buildAndSign() throws {
        let directory = try TemporaryDirectoryForAPI()
        let path = directory.file("artifact")
        try Array("hello, cascade\n".utf8).write(to: path)
        let manifest = try ManifestBuilder(chunkSize: 6).build(fileAt: path, name: "cascade-agent", version: "1.1.0",
                                                                createdAt: 1_767_225_600)
        let key = try ServiceVectors.key("test-release-key")
        let signed = try SignedManifest.sign(manifest, with: key)
        #expect(signed.serializedBytes() == (try ServiceVectors.named("signed-manifest").hex(1)))
        #expect(signed.manifestBytes == (try ServiceVectors.named("manifest").hex(1)))
        #expect(try ReleaseVerifier(trustedKeys: [key.publicKey]).verify(signed) == ServiceVectors.message("manifest", as: Manifest.self))
    }

    @Test("manifest_sha256 is the SHA-256 of the manifest bytes as signed, not of the SignedManifest's encoding (services.md §4.2)")
    func manifestDigest() throws {
        let signed = try ServiceVectors.message("signed-manifest", as: SignedManifest.self)
        let expected = "5aa096ab96ee14bbe63b2dda9b10215b1730e731288d6f972d8419878082c9eb"
        #expect(signed.manifestDigest.hex == expected)
        #expect(SHA256.hash(try ServiceVectors.named("manifest").hex(1)).hex == expected)
        #expect(SHA256.hash(try ServiceVectors.named("signed-manifest").hex(1)).hex != expected)
    }

    @Test("golden vectors decode to the values services.md describes")
    func typedValues() throws {
        let idle = IdleRatios(cpu: 0.75, memory: 0.5)
        #expect(try ServiceVectors.message("idle-ratios") == idle)
        #expect(try ServiceVectors.message("register-request") == RegisterRequest(
            address: "127.0.1.5", memberPort: 7443, mainVersion: "1.0.0", upgraderVersion: "1.0.0", idle: idle,
            hostname: "node-5"))
        let downloading = AgentProgress(rolloutID: 7, state: .downloading, releaseVersion: "1.1.0", bytesDone: 6, bytesTotal: 15)
        #expect(try ServiceVectors.message("register-request-resume", as: RegisterRequest.self).resume == downloading)
        #expect(try ServiceVectors.message("assignment-leader") == Assignment(
            agentID: "a1", role: .leader, clusterID: "127.0.1.0/24", clusterPrefix: "127.0.1.0/24", leaderID: "a1",
            leaderAddress: "127.0.1.1:7443", leaderEpoch: 3, reportIntervalMs: 5000, memberIDs: ["a2", "a5"]))
        let cluster = try #require(try ServiceVectors.message("agent-report-cluster", as: AgentReport.self).cluster)
        #expect(cluster.members.map(\.agentID) == ["a2", "a5"])
        #expect(cluster.members[0].progress?.state == .healthy)
        #expect(cluster.complete && cluster.bytesReceived == 15 && cluster.bytesServed == 21)

        let signed = try ServiceVectors.message("signed-manifest", as: SignedManifest.self)
        let order = try #require(try ServiceVectors.message("instruction-cluster-rollout", as: Instruction.self).clusterRollout)
        #expect(order == ClusterRolloutOrder(rolloutID: 7, releaseVersion: "1.1.0", signedManifest: signed,
                                             policy: RolloutPolicy(maxUnavailable: 2, failureBudgetPercent: 10, healthTimeoutSeconds: 60)))
        // No weights on the wire (as from an older coordinator): the leader ranks with 3 and 2.
        #expect(order.weights == .default)
        let weighted = try ServiceVectors.message("cluster-rollout-weights", as: ClusterRolloutOrder.self)
        #expect(weighted == ClusterRolloutOrder(rolloutID: 7, releaseVersion: "1.1.0",
                                                weights: IdleWeights(cpu: 1, memory: 4)))
        #expect(weighted.weights == IdleWeights(cpu: 1, memory: 4))
        #expect(try ServiceVectors.message("instruction-upgrade") == Instruction(
            leaderEpoch: 3, upgrade: UpgradeOrder(rolloutID: 7, releaseVersion: "1.1.0", signedManifest: signed, healthTimeoutSeconds: 60)))
        #expect(try ServiceVectors.message("instruction-abort") == Instruction(
            leaderEpoch: 3, control: RolloutControl(rolloutID: 7, action: .abort, reason: "operator abort")))
        #expect(try ServiceVectors.message("upgrade-leader-request") == UpgradeLeaderRequest(
            rolloutID: 7, leaderEpoch: 3, senderID: "a5", releaseVersion: "1.1.0"))

        let manifest = try ServiceVectors.message("manifest", as: Manifest.self)
        #expect(manifest.name == "cascade-agent" && manifest.version == "1.1.0" && manifest.size == 15)
        #expect(manifest.chunkSize == 6 && manifest.chunkCount == 3 && manifest.createdAt == 1_767_225_600)
        #expect(manifest.sha256 == SHA256.hash(Array("hello, cascade\n".utf8)))
        #expect(manifest.keyID == (try ServiceVectors.key("test-release-key")).publicKey.keyID)
        #expect(try ServiceVectors.message("chunk-0") == Chunk(index: 0, data: Array("hello,".utf8),
                                                               sha256: SHA256.hash(Array("hello,".utf8))))

        let status = try ServiceVectors.message("release-status-response", as: ReleaseStatusResponse.self)
        #expect(status.missingChunks == [1])
        let rollout = try ServiceVectors.message("rollout-status", as: RolloutStatus.self)
        #expect(rollout.state == .running && rollout.totals.total == 4 && rollout.totals[.healthy] == 2)
        #expect(rollout.clusterProgress.first?.phase == .members)

        #expect(try ServiceVectors.message("progress-unknown-state", as: AgentProgress.self).state == .unknown(42))
    }

    @Test("older messages read their missing fields as defaults")
    func olderDefaults() throws {
        let register = try ServiceVectors.message("register-request-v0", as: RegisterRequest.self)
        #expect(register == RegisterRequest(address: "127.0.1.5", memberPort: 7443, mainVersion: "1.0.0"))
        #expect(register.resume == nil && register.idle == IdleRatios())
        let assignment = try ServiceVectors.message("assignment-v0", as: Assignment.self)
        #expect(assignment.effectiveReportIntervalMs == 5000 && assignment.memberIDs.isEmpty && assignment.role == .member)
        let report = try ServiceVectors.message("agent-report-v0", as: AgentReport.self)
        #expect(report.heartbeat == Heartbeat(idle: IdleRatios(cpu: 0.75, memory: 0.5), mainVersion: "1.0.0"))
    }

    @Test("a newer instruction still yields the order an old member knows")
    func newerInstruction() throws {
        let vector = try ServiceVectors.named("instruction-newer")
        let instruction = try Instruction(serializedBytes: vector.hex(1))
        #expect(instruction == Instruction(leaderEpoch: 3, upgrade: UpgradeOrder(rolloutID: 7, releaseVersion: "1.1.0",
                                                                                 healthTimeoutSeconds: 60)))
    }
}
