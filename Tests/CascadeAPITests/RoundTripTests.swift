@testable import CascadeAPI
import CascadeCrypto
import CascadeWire
import Testing

/// Encodes, decodes and compares, then checks the encoding is stable (decode → encode → same bytes).
func roundTrip<M: WireMessage & Equatable>(_ message: M, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let bytes = message.serializedBytes()
    let decoded = try M(serializedBytes: bytes)
    #expect(decoded == message, sourceLocation: sourceLocation)
    #expect(decoded.serializedBytes() == bytes, sourceLocation: sourceLocation)
}

@Suite("Message round trips")
struct RoundTripTests {
    static let digest = SHA256.hash(Array("cascade".utf8))

    @Test("every message type survives encode then decode unchanged")
    func everyMessage() throws {
        let progress = AgentProgress(rolloutID: 7, state: .downloading, releaseVersion: "1.1", bytesDone: 1 << 20,
                                     bytesTotal: 3 << 20, error: "")
        let idle = IdleRatios(cpuPPM: 750_000, memoryPPM: 500_000)
        let heartbeat = Heartbeat(idle: idle, mainVersion: "1.0", upgraderVersion: "1.0")
        let assignment = Assignment(agentID: "a1", role: .leader, clusterID: "127.0.1.0/24", clusterPrefix: "127.0.1.0/24",
                                    leaderID: "a1", leaderAddress: "127.0.1.1:7443", leaderEpoch: 3,
                                    reportIntervalMs: 5000, memberIDs: ["a2", "a3"])
        let signed = SignedManifest(manifestBytes: [1, 2, 3], signature: Array(repeating: 9, count: 64), keyID: "00112233")
        let policy = RolloutPolicy(maxUnavailable: 2, maxParallelClusters: 3, canaryClusters: 1,
                                   failureBudgetPercent: 10, healthTimeoutSeconds: 60, rollback: true)
        let member = MemberStatus(agentID: "a2", connected: true, heartbeat: heartbeat, progress: progress)
        try roundTrip(RegisterRequest(address: "127.0.1.1", memberPort: 7443, mainVersion: "1.0", upgraderVersion: "1.0",
                                      idle: idle, resume: progress, hostname: "h1"))
        try roundTrip(assignment)
        try roundTrip(GetReleaseRequest(version: "1.1"))
        try roundTrip(FetchChunksRequest(version: "1.1", artifactSHA256: Self.digest, firstIndex: 5, maxChunks: 2))
        try roundTrip(Chunk(index: 5, data: [0, 1, 2], sha256: Self.digest))
        try roundTrip(FaultReport(rolloutID: 7, sourceID: "a1", releaseVersion: "1.1", chunkIndex: 4, leaderEpoch: 3, detail: "x"))
        try roundTrip(FetchHint(rolloutID: 7, source: .coordinator, address: "", reason: "leader served a bad chunk"))
        try roundTrip(AgentReport(leaderEpoch: 3, heartbeat: heartbeat, progress: progress,
                                  cluster: ClusterReport(clusterID: "c", rolloutID: 7, members: [member], complete: true,
                                                         bytesReceived: 10, bytesServed: 20)))
        try roundTrip(Instruction(
            leaderEpoch: 3, assignment: assignment,
            clusterRollout: ClusterRolloutOrder(rolloutID: 7, releaseVersion: "1.1", signedManifest: signed, policy: policy,
                                                members: [member]),
            upgrade: UpgradeOrder(rolloutID: 7, releaseVersion: "1.1", signedManifest: signed, healthTimeoutSeconds: 60,
                                  rollback: true, fetch: FetchHint(source: .leader, address: "127.0.1.1:7443")),
            control: RolloutControl(rolloutID: 7, action: .pause, reason: "operator"),
            fetchHint: FetchHint(source: .coordinator),
            secondInstructionCue: SecondInstructionCue(rolloutID: 7, releaseVersion: "1.1")))
        try roundTrip(UpgradeLeaderRequest(rolloutID: 7, leaderEpoch: 3, senderID: "a2", releaseVersion: "1.1"))
        try roundTrip(UpgradeLeaderResponse(alreadyUpgrading: true))
        let info = ReleaseInfo(name: "cascade-agent", version: "1.1", size: 10, chunkSize: 4, chunkCount: 3,
                               sha256: Self.digest, keyID: "k", createdAt: 1, pushedAtMs: 2, pushedBy: "op",
                               chunksPresent: 3, complete: true, manifestSHA256: Self.digest)
        try roundTrip(PushReleaseRequest(signedManifest: signed, chunk: Chunk(index: 1, data: [1])))
        try roundTrip(PushReleaseResponse(release: info))
        try roundTrip(ReleaseQuery(version: "1.1"))
        try roundTrip(ReleaseStatusResponse(release: info, presentBitmap: [0b101]))
        try roundTrip(ListReleasesResponse(releases: [info, info]))
        try roundTrip(ShowReleaseResponse(release: info, signedManifest: signed))
        try roundTrip(StartRolloutRequest(releaseVersion: "1.1", clusters: ["a", "b"], policy: policy, clientToken: "t"))
        try roundTrip(RolloutControlRequest(rolloutID: 7, reason: "why"))
        try roundTrip(RolloutQuery(rolloutID: 7, includeAgents: true, minIntervalMs: 500))
        let counts = StateCounts(pending: 1, instructed: 2, downloading: 3, installing: 4, healthy: 5, failed: 6, rolledBack: 7)
        let status = RolloutStatus(
            rolloutID: 7, releaseVersion: "1.1", state: .running, policy: policy, clusters: ["c"], createdAtMs: 1,
            startedAtMs: 2, finishedAtMs: 3, updatedAtMs: 4, createdBy: "op", message: "m", totals: counts,
            clusterProgress: [ClusterProgress(clusterID: "c", phase: .members, leaderID: "a1", leaderEpoch: 3, counts: counts,
                                              bytesFromCoordinator: 5, bytesServed: 6, wave: 1, message: "x")],
            agents: [AgentRow(agentID: "a2", clusterID: "c", role: .member, progress: progress, updatedAtMs: 9)],
            fromVersion: "1.0")
        try roundTrip(status)
        try roundTrip(ListRolloutsRequest(limit: 5, beforeID: 9))
        try roundTrip(ListRolloutsResponse(rollouts: [status]))
        try roundTrip(ListAgentsRequest(clusterID: "c", limit: 10, afterAgentID: "a1"))
        try roundTrip(ListAgentsResponse(agents: [AgentInfo(
            agentID: "a1", address: "127.0.1.1", memberPort: 7443, clusterID: "c", role: .leader, mainVersion: "1.0",
            upgraderVersion: "1.0", idle: idle, lastSeenMs: 5, connected: true, hostname: "h", registeredAtMs: 4)], more: true))
        let cluster = ClusterInfo(clusterID: "c", prefix: "127.0.1.0/24", leaderID: "a1", leaderAddress: "127.0.1.1:7443",
                                  leaderEpoch: 3, agentCount: 4, connectedCount: 3, leaderSinceMs: 8)
        try roundTrip(ListClustersResponse(clusters: [cluster]))
        try roundTrip(MoveLeaderRequest(clusterID: "c", agentID: "a2"))
        try roundTrip(cluster)
        try roundTrip(ListEventsRequest(limit: 5, afterID: 6, sinceMs: 7, rolloutID: 8, clusterID: "c", agentID: "a"))
        try roundTrip(ListEventsResponse(events: [Event(id: 1, atMs: 2, actor: "operator alice", kind: "rollout.started",
                                                        rolloutID: 7, clusterID: "c", agentID: "a", detail: "d")]))
        try roundTrip(signed)
    }

    @Test("default values are omitted, so an all-default message encodes to nothing")
    func defaultsOmitted() {
        #expect(RegisterRequest().serializedBytes() == [])
        #expect(Instruction().serializedBytes() == [])
        #expect(RolloutStatus().serializedBytes() == [])
        #expect(StateCounts().serializedBytes() == [])
    }
}
