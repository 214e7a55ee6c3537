@testable import CascadeAPI
import CascadeCrypto
import CascadeWire

/// One fully populated value of a message type: every field non-default, every repeated field
/// with two elements, so its encoding shows every field number the type writes.
struct Sample: Sendable, CustomStringConvertible {
    let name: String
    let encoded: [UInt8]
    /// Decodes `encoded`, compares with the original and re-encodes.
    let check: @Sendable () throws -> (equal: Bool, reencoded: [UInt8])
    /// Decodes arbitrary bytes as this type (for the hostile-input tests).
    let decode: @Sendable ([UInt8]) throws -> Void

    init<M: WireMessage & Equatable>(_ message: M) {
        let bytes = message.serializedBytes()
        name = String(describing: M.self)
        encoded = bytes
        check = {
            let decoded = try M(serializedBytes: bytes)
            return (decoded == message, decoded.serializedBytes())
        }
        decode = { _ = try M(serializedBytes: $0) }
    }

    var description: String { name }
}

enum Samples {
    static let digest = SHA256.hash(Array("cascade".utf8))
    static let idle = IdleRatios(cpuPPM: 750_000, memoryPPM: 500_000)
    static let progress = AgentProgress(rolloutID: 7, state: .downloading, releaseVersion: "1.1.0", bytesDone: 6,
                                        bytesTotal: 15, error: "none yet")
    static let heartbeat = Heartbeat(idle: idle, mainVersion: "1.0.0", upgraderVersion: "1.0.0")
    static let member = MemberStatus(agentID: "a2", connected: true, heartbeat: heartbeat, progress: progress)
    static let assignment = Assignment(
        agentID: "a1", role: .leader, clusterID: "127.0.1.0/24", clusterPrefix: "127.0.1.0/24", leaderID: "a1",
        leaderAddress: "127.0.1.1:7443", leaderEpoch: 3, reportIntervalMs: 5000, memberIDs: ["a2", "a3"])
    static let signed = SignedManifest(manifestBytes: [1, 2, 3], signature: Array(repeating: 9, count: 64), keyID: "21fe31dfa154a261")
    static let policy = RolloutPolicy(maxUnavailable: 2, maxParallelClusters: 3, canaryClusters: 1,
                                      failureBudgetPercent: 10, healthTimeoutSeconds: 60, rollback: true)
    static let downgrade = SignedDowngrade(authorizationBytes: [1, 2], signature: [3], keyID: "k")
    static let authorization = DowngradeAuthorization(name: "cascade-agent", fromVersion: "2.0", toVersion: "1.1", expiresAt: 9, keyID: "k")
    static let expectation = RolloutExpectation(rolloutID: 7, releaseName: "cascade-agent", releaseVersion: "1.1.0",
                                                manifestSHA256: digest, downgrade: downgrade)
    static let hint = FetchHint(rolloutID: 7, source: .coordinator, address: "127.0.0.1:7000", reason: "bad chunk")
    static let chunk = Chunk(index: 5, data: [0, 1, 2], sha256: digest)
    static let counts = StateCounts(pending: 1, instructed: 2, downloading: 3, installing: 4, healthy: 5, failed: 6, rolledBack: 7)
    static let release = ReleaseInfo(
        name: "cascade-agent", version: "1.1.0", size: 15, chunkSize: 6, chunkCount: 3, sha256: digest, keyID: "k",
        createdAt: 1, pushedAtMs: 2, pushedBy: "alice", chunksPresent: 3, complete: true, manifestSHA256: digest,
        damage: "chunk 2 of 3 does not match its signed manifest")
    static let clusterProgress = ClusterProgress(
        clusterID: "c", phase: .members, leaderID: "a1", leaderEpoch: 3, counts: counts, bytesFromCoordinator: 5,
        bytesServed: 6, wave: 1, message: "waiting")
    static let agentRow = AgentRow(agentID: "a2", clusterID: "c", role: .member, progress: progress, updatedAtMs: 9)
    static let status = RolloutStatus(
        rolloutID: 7, releaseVersion: "1.1.0", state: .running, policy: policy, clusters: ["c", "d"], createdAtMs: 1,
        startedAtMs: 2, finishedAtMs: 3, updatedAtMs: 4, createdBy: "alice", message: "m", totals: counts,
        clusterProgress: [clusterProgress, clusterProgress], agents: [agentRow, agentRow], fromVersion: "1.0.0")
    static let agentInfo = AgentInfo(
        agentID: "a1", address: "127.0.1.1", memberPort: 7443, clusterID: "c", role: .leader, mainVersion: "1.0.0",
        upgraderVersion: "1.0.0", idle: idle, lastSeenMs: 5, connected: true, hostname: "h", registeredAtMs: 4)
    static let cluster = ClusterInfo(clusterID: "c", prefix: "127.0.1.0/24", leaderID: "a1", leaderAddress: "127.0.1.1:7443",
                                     leaderEpoch: 3, agentCount: 4, connectedCount: 3, leaderSinceMs: 8)
    static let event = Event(id: 1, atMs: 2, actor: "operator alice", kind: "rollout.created", rolloutID: 7,
                             clusterID: "c", agentID: "a", detail: "d")
    static let manifest = Manifest(name: "cascade-agent", version: "1.1.0", size: 15, chunkSize: 6,
                                   chunkHashes: [digest, digest, digest], sha256: digest, createdAt: 1_767_225_600, keyID: "k")
    static let clusterOrder = ClusterRolloutOrder(rolloutID: 7, releaseVersion: "1.1.0", signedManifest: signed,
                                                  policy: policy, members: [member, member], weights: IdleWeights(cpu: 1, memory: 4),
                                                  failureLimit: 2)
    static let upgrade = UpgradeOrder(rolloutID: 7, releaseVersion: "1.1.0", signedManifest: signed, healthTimeoutSeconds: 60,
                                      rollback: true, fetch: hint)

    /// Every message of services.md §6, by name.
    static let all: [Sample] = [
        Sample(agentInfo), Sample(progress),
        Sample(AgentReport(leaderEpoch: 3, heartbeat: heartbeat, progress: progress,
                           cluster: ClusterReport(clusterID: "c", rolloutID: 7, members: [member], complete: true))),
        Sample(agentRow), Sample(assignment), Sample(chunk), Sample(cluster), Sample(clusterProgress),
        Sample(ClusterReport(clusterID: "c", rolloutID: 7, members: [member, member], complete: true,
                             bytesReceived: 10, bytesServed: 20)),
        Sample(clusterOrder), Sample(event),
        Sample(FaultReport(rolloutID: 7, sourceID: "a1", releaseVersion: "1.1.0", chunkIndex: 4, leaderEpoch: 3, detail: "x",
                           orderRefused: true)),
        Sample(authorization), Sample(downgrade), Sample(expectation),
        Sample(FetchChunksRequest(version: "1.1.0", artifactSHA256: digest, firstIndex: 5, maxChunks: 2)),
        Sample(hint), Sample(GetReleaseRequest(version: "1.1.0")), Sample(heartbeat), Sample(idle),
        Sample(Instruction(leaderEpoch: 3, assignment: assignment, clusterRollout: clusterOrder, upgrade: upgrade,
                           control: RolloutControl(rolloutID: 7, action: .pause, reason: "operator"), fetchHint: hint,
                           secondInstructionCue: SecondInstructionCue(rolloutID: 7, releaseVersion: "1.1.0"),
                           expectation: expectation)),
        Sample(ListAgentsRequest(clusterID: "c", limit: 10, afterAgentID: "a1")),
        Sample(ListAgentsResponse(agents: [agentInfo, agentInfo], more: true)),
        Sample(ListClustersRequest()), Sample(ListClustersResponse(clusters: [cluster, cluster])),
        Sample(ListEventsRequest(limit: 5, afterID: 6, sinceMs: 7, rolloutID: 8, clusterID: "c", agentID: "a")),
        Sample(ListEventsResponse(events: [event, event])),
        Sample(ListReleasesRequest()), Sample(ListReleasesResponse(releases: [release, release])),
        Sample(ListRolloutsRequest(limit: 5, beforeID: 9)), Sample(ListRolloutsResponse(rollouts: [status, status])),
        Sample(manifest), Sample(member), Sample(MoveLeaderRequest(clusterID: "c", agentID: "a2")),
        Sample(PushReleaseRequest(signedManifest: signed, chunk: chunk)), Sample(PushReleaseResponse(release: release)),
        Sample(RegisterRequest(address: "127.0.1.1", memberPort: 7443, mainVersion: "1.0.0", upgraderVersion: "1.0.0",
                               idle: idle, resume: progress, hostname: "h1")),
        Sample(release), Sample(ReleaseQuery(version: "1.1.0")),
        Sample(ReleaseStatusResponse(release: release, presentBitmap: [0b101])),
        Sample(RolloutControl(rolloutID: 7, action: .abort, reason: "why")),
        Sample(RolloutControlRequest(rolloutID: 7, reason: "why")), Sample(policy),
        Sample(RolloutQuery(rolloutID: 7, includeAgents: true, minIntervalMs: 500)), Sample(status),
        Sample(SecondInstructionCue(rolloutID: 7, releaseVersion: "1.1.0")),
        Sample(ShowReleaseResponse(release: release, signedManifest: signed)), Sample(signed),
        Sample(StartRolloutRequest(releaseVersion: "1.1.0", clusters: ["a", "b"], policy: policy, clientToken: "t", downgrade: downgrade)),
        Sample(counts),
        Sample(UpgradeLeaderRequest(rolloutID: 7, leaderEpoch: 3, senderID: "a2", releaseVersion: "1.1.0")),
        Sample(UpgradeLeaderResponse(alreadyUpgrading: true)), Sample(upgrade),
    ]
}
