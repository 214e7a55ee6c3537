import CascadeAPI
import CascadeCoordinator
import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Testing

/// A FetchChunksRequest whose artifact_sha256 is present but empty: `FetchChunksRequest` itself
/// never writes one, so the bytes are written by hand.
struct EmptyDigestFetch: WireMessage {
    init() {}

    init(from reader: inout MessageReader) throws(WireError) {
        while try reader.next() != nil {}
    }

    func encode(to writer: inout MessageWriter) {
        writer.writeString(field: 1, "1.1")
        writer.writeBytes(field: 2, [UInt8]())
    }
}

/// The events whose filters match, as the operator reads them.
func listEvents(_ fixture: CoordinatorFixture, _ request: ListEventsRequest) async throws -> [Event] {
    var query = request
    query.limit = 1000
    return try await fixture.operatorClient.unary(OperatorService.listEvents, query).events
}

/// The gaps services.md left open (issue 16), each decided and shown against the real
/// coordinator over mutual TLS.
@Suite("services.md gaps, against the real coordinator", .serialized)
struct SpecGapTests {
    @Test("a present but empty digest is malformed, not absent: FetchChunks ends with INTERNAL before the handler runs")
    func emptyDigest() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let release = try fixture.release("1.1")
        try await fixture.push(release)
        let agent = try FakeAgent(fixture, id: "a1-01", address: "127.0.1.11")
        defer { agent.disconnect() }
        _ = try await agent.register(cpu: 0.5)
        let raw = RPCMethod<EmptyDigestFetch, Chunk>(CoordinatorService.fetchChunks.name, allowedRoles: [.agent])
        let connection = try await agent.client.connection()
        var chunks = 0
        let error = await #expect(throws: RPCError.self) {
            try await connection.serverStreaming(raw, EmptyDigestFetch()) { stream in
                for try await _ in stream { chunks += 1 }
            }
        }
        #expect(error?.code == .internal)
        #expect(error?.message.contains("32-byte") == true, "\(String(describing: error))")
        #expect(chunks == 0)
        // The same request without the field is served in full.
        #expect(try await fetchAll(agent.client, "1.1") == release.bytes)
    }

    @Test("byte counters: a one-agent cluster has bytes from the coordinator, counted for its rollout only, and none served; its cluster-state events carry the cluster")
    func oneAgentCluster() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let release = try fixture.release("1.1")
        try await fixture.push(release)
        let agents = try await makeAgents(fixture, [("a9-01", 0.5)])
        let solo = try #require(agents["a9-01"])
        defer { solo.disconnect() }
        // A fetch before the rollout exists counts for no rollout.
        #expect(try await fetchAll(solo.client, "1.1") == release.bytes)
        let id = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        _ = try await solo.instruction("its direct upgrade") { $0.upgrade?.rolloutID == id }
        #expect(try await fetchAll(solo.client, "1.1") == release.bytes)
        solo.report(.downloading, rollout: id, bytes: UInt64(release.bytes.count))
        let size = UInt64(release.bytes.count)
        let cluster = try await waitUntilAsync(within: .seconds(10), "the rollout's count of bytes from the coordinator") {
            let status = try await rolloutStatus(fixture, id)
            let downloaded = status.agents.first?.progress.bytesDone == size
            return status.clusterProgress.first.flatMap { downloaded && $0.bytesFromCoordinator == size ? $0 : nil }
        }
        // Its only agent leads nobody: nothing was served, whatever it downloaded itself.
        #expect(cluster.bytesServed == 0)
        #expect(cluster.clusterID == "127.0.9.0/24")

        // The cluster's rollout states are found by the cluster filter, with both ids set.
        let byCluster = try await listEvents(fixture, ListEventsRequest(clusterID: "127.0.9.0/24"))
        let clusterStates = byCluster.filter { $0.kind == "rollout.cluster-state" }
        #expect(!clusterStates.isEmpty)
        #expect(clusterStates.allSatisfy { $0.clusterID == "127.0.9.0/24" && $0.rolloutID == id })
        #expect(byCluster.contains { $0.kind == "cluster.created" })
        // Filters combine with AND: the rollout and the agent narrow it to that agent's states.
        let mine = try await listEvents(fixture, ListEventsRequest(rolloutID: id, clusterID: "127.0.9.0/24", agentID: "a9-01"))
        #expect(!mine.isEmpty && mine.allSatisfy { $0.kind == "rollout.agent-state" && $0.agentID == "a9-01" })
        #expect(try await listEvents(fixture, ListEventsRequest(clusterID: "127.0.8.0/24")).isEmpty)
    }

    @Test("byte counters: bytes served are the leader's own count, not its members' downloads; nothing more is booked once the leader is offline, and members' reports never count")
    func leaderCounts() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let release = try fixture.release("1.1")
        try await fixture.push(release)
        let size = UInt64(release.bytes.count)
        let agents = try await makeAgents(fixture, [("a8-01", 0.9), ("a8-02", 0.5), ("a8-03", 0.7)])
        defer { for agent in agents.values { agent.disconnect() } }
        let leader = try #require(agents["a8-01"])
        let member = try #require(agents["a8-02"])
        let fallback = try #require(agents["a8-03"])
        let id = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        _ = try await leader.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }

        func counts(_ what: String, _ match: @escaping @Sendable (ClusterProgress, RolloutStatus) -> Bool) async throws -> ClusterProgress {
            try await waitUntilAsync(within: .seconds(10), what) {
                let status = try await rolloutStatus(fixture, id)
                return status.clusterProgress.first.flatMap { match($0, status) ? $0 : nil }
            }
        }
        // The leader fetches once and says it served both members.
        #expect(try await fetchAll(leader.client, "1.1") == release.bytes)
        leader.send(AgentReport(cluster: ClusterReport(
            clusterID: "127.0.8.0/24", rolloutID: id, complete: true, bytesReceived: size, bytesServed: 2 * size)))
        var cluster = try await counts("the leader's reported count") { cluster, _ in cluster.bytesServed == 2 * size }
        #expect(cluster.bytesFromCoordinator == size)

        // A member's claim to have served is ignored (it leads nothing); its own download is
        // not "served" either. Reports on one session are handled in order.
        member.send(AgentReport(cluster: ClusterReport(clusterID: "127.0.8.0/24", rolloutID: id, bytesServed: 99)))
        member.report(.instructed, rollout: id)
        member.report(.downloading, rollout: id, bytes: size)
        cluster = try await counts("the member's download recorded") { _, status in
            status.agents.contains { $0.agentID == "a8-02" && $0.progress.bytesDone == size }
        }
        #expect(cluster.bytesServed == 2 * size)

        // The leader goes offline; a member falls back to the coordinator: those bytes count as
        // from the coordinator, and nothing is booked as served by the offline leader.
        leader.disconnect()
        _ = try await waitUntilAsync(within: .seconds(10), "the leader to be offline") {
            let agents = try await fixture.operatorClient.unary(OperatorService.listAgents, ListAgentsRequest()).agents
            return agents.first { $0.agentID == "a8-01" && !$0.connected }
        }
        #expect(try await fetchAll(fallback.client, "1.1") == release.bytes)
        fallback.report(.instructed, rollout: id)
        fallback.report(.downloading, rollout: id, bytes: size)
        cluster = try await counts("the fallback fetch counted") { cluster, status in
            cluster.bytesFromCoordinator == 2 * size && status.agents.contains { $0.agentID == "a8-03" && $0.progress.bytesDone == size }
        }
        #expect(cluster.bytesServed == 2 * size)
    }

    @Test("the second-instruction cue: none while a member is at work; then to the best-ranked healthy member, repeated, with the order to the leader; none once the leader installs; the order lists the leader too")
    func secondInstructionCue() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a7-01", 0.9), ("a7-02", 0.5), ("a7-03", 0.7)])
        defer { for agent in agents.values { agent.disconnect() } }
        let leader = try #require(agents["a7-01"])
        let low = try #require(agents["a7-02"])
        let high = try #require(agents["a7-03"])
        let id = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        let order = try await leader.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        // Every agent of the cluster in the rollout, the leader's own row included.
        #expect(order.clusterRollout?.members.map(\.agentID).sorted() == ["a7-01", "a7-02", "a7-03"])

        upgrade(low, rollout: id)
        high.report(.instructed, rollout: id)
        high.report(.downloading, rollout: id, bytes: 1000)
        try await waitForAgent(fixture, id, "a7-02", .healthy)
        try await waitForAgent(fixture, id, "a7-03", .downloading)
        // The order is re-sent every resend interval (1 s here) while members work: two more
        // prove the engine looked again since, and it cued nobody.
        let seen = leader.instructions.filter { $0.clusterRollout?.rolloutID == id }.count
        _ = try await waitUntil(within: .seconds(10), "two more orders to the leader") {
            leader.instructions.filter { $0.clusterRollout?.rolloutID == id }.count >= seen + 2 ? true : nil
        }
        #expect(agents.values.allSatisfy { $0.instructions.allSatisfy { $0.secondInstructionCue == nil } })

        high.report(.installing, rollout: id, bytes: 300_000)
        high.report(.healthy, rollout: id)
        // The best-ranked healthy member (idle 0.7 over 0.5) is cued, again after the interval.
        _ = try await waitUntil(within: .seconds(10), "two cues to a7-03") {
            high.instructions.filter { $0.secondInstructionCue?.rolloutID == id }.count >= 2 ? true : nil
        }
        #expect(low.instructions.allSatisfy { $0.secondInstructionCue == nil })
        // With each cue the leader gets the order again, with the members' outcomes and the expectation.
        let resent = try #require(leader.instructions.last { $0.clusterRollout?.rolloutID == id && $0.expectation != nil })
        #expect(resent.clusterRollout?.members.filter { $0.progress?.state == .healthy }.map(\.agentID).sorted() == ["a7-02", "a7-03"])

        leader.report(.installing, rollout: id, bytes: 300_000)
        leader.report(.healthy, rollout: id)
        _ = try await waitForRollout(fixture, id, .succeeded)
        let events = try await listEvents(fixture, ListEventsRequest(rolloutID: id))
        let cues = events.filter { $0.kind == "rollout.second-instruction-cue" }
        #expect(cues.count >= 2)
        #expect(cues.allSatisfy { $0.agentID == "a7-03" && $0.clusterID == "127.0.7.0/24" && $0.rolloutID == id })
        // No cue after the leader's own install began.
        let installing = try #require(events.first { $0.kind == "rollout.agent-state" && $0.detail.hasPrefix("agent a7-01: ") && $0.detail.contains("→ installing") })
        #expect(cues.allSatisfy { $0.id < installing.id })
    }
}
