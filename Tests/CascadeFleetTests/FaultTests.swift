import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Foundation
import Testing

/// The end-to-end fault suite (DESIGN.md §6): the real coordinator binary and real agent pairs
/// on loopback (127.0.1.x and 127.0.2.x are two /24 clusters), a signed padded release of the
/// built binaries, and one fault per test. Each asserts the end state — versions on disk,
/// database rows read back over RPC, files — not just "no crash".
@Suite("Fleet faults", .serialized)
struct FaultTests {
    /// Versions of every agent, for failure messages.
    static func versions(_ nodes: [FleetNode]) -> String {
        nodes.map { "\($0.id): main \($0.version("main") ?? "-") upgrader \($0.version("upgrader") ?? "-")" }.joined(separator: ", ")
    }

    @Test("a release whose main program never gets healthy: rolled back on every member that tried it, the rollout fails at its budget, the leader stays on 1.0")
    func failedHealthCheck() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let subnets = try await fleet.makeAgents(subnets: [1, 2], perSubnet: 3, healthDeadline: 6)
        let (first, second) = (subnets[0], subnets[1])
        try await fleet.push(bundles.neverHealthy, version: "1.1")
        // Two members at once; one cluster at a time; 6 agents, so a budget of 20% is spent at
        // the second failure (2 × 100 > 20 × 6).
        let id = try await fleet.startRollout("1.1", RolloutPolicy(
            maxUnavailable: 2, maxParallelClusters: 1, failureBudgetPercent: 20, healthTimeoutSeconds: 30))
        let status = try await fleet.waitRollout(id, "failed") { $0.state == .failed }
        #expect(status.message.contains("failure budget of 20% is spent"))

        // Both members of the cluster that ran tried 1.1 and were rolled back to 1.0.
        let ran = try #require([first, second].first { nodes in
            status.agents.contains { row in nodes.contains { $0.id == row.agentID } && row.progress.state == .rolledBack }
        })
        let idle = ran[0].id.hasPrefix("a1") ? second : first
        let leader = ran[0]
        for member in ran.dropFirst() {
            let row = try #require(status.agents.first { $0.agentID == member.id })
            #expect(row.progress.state == .rolledBack, "\(member.id): \(row.progress)")
            #expect(!row.progress.error.isEmpty)
            let transitions = try await fleet.transitions(member.id, rollout: id)
            #expect(transitions.contains { $0.hasPrefix("installing → rolled-back") || $0.hasPrefix("downloading → rolled-back") }, "\(transitions)")
        }
        // Every one of them is back on 1.0, on disk and running, and remembers 1.1 as failed.
        _ = try await fleet.wait("every agent back on 1.0: \(Self.versions(fleet.agents))") {
            fleet.agents.allSatisfy { $0.settled(on: "1.0") } ? true : nil
        }
        for member in ran.dropFirst() {
            #expect(member.releases("main").contains("1.1"), "\(member.id) tried 1.1")
            let failures = try String(contentsOfFile: "\(member.root)/state/failed-main.json", encoding: .utf8)
            #expect(failures.contains("1.1"), "\(member.id): \(failures)")
        }
        // The leader was never upgraded: no instruction, no 1.1 on disk.
        let leaderRow = try #require(status.agents.first { $0.agentID == leader.id })
        #expect(leaderRow.progress.state == .pending)
        #expect(try await fleet.transitions(leader.id, rollout: id).isEmpty)
        #expect(!leader.releases("main").contains("1.1"))
        // The rollout stopped: the other cluster never started.
        for node in idle {
            #expect(status.agents.first { $0.agentID == node.id }?.progress.state == .pending)
            #expect(try await fleet.transitions(node.id, rollout: id).isEmpty)
        }
        #expect(status.clusterProgress.map(\.phase).contains(.aborted) || status.clusterProgress.contains { $0.phase == .failed })
    }
}

/// Where a rollout agent state stands in the forward order (terminal states last).
func rank(_ state: AgentRolloutState) -> Int {
    switch state {
    case .pending: 0
    case .instructed: 1
    case .downloading: 2
    case .installing: 3
    case .healthy, .failed, .rolledBack: 4
    default: -1
    }
}

extension FaultTests {
    /// Each agent went through installing and healthy exactly once in the rollout.
    static func expectUpgradedOnce(_ fleet: Fleet, _ nodes: [FleetNode], rollout id: UInt64) async throws {
        for node in nodes {
            let transitions = try await fleet.transitions(node.id, rollout: id)
            #expect(transitions.filter { $0.hasSuffix("→ installing") }.count == 1, "\(node.id): \(transitions)")
            #expect(transitions.filter { $0.hasSuffix("→ healthy") }.count == 1, "\(node.id): \(transitions)")
            #expect(!transitions.contains { $0.contains("failed") || $0.contains("rolled-back") }, "\(node.id): \(transitions)")
        }
    }

    @Test("kill -9 the coordinator mid-rollout: restarted on the same data and port, every acknowledged row is there and the rollout succeeds")
    func coordinatorKilled() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let subnets = try await fleet.makeAgents(perSubnet: 2)
        let nodes = subnets.flatMap { $0 }
        try await fleet.push(bundles.good, version: "1.1")
        let id = try await fleet.startRollout("1.1", RolloutPolicy(maxUnavailable: 1, maxParallelClusters: 2, healthTimeoutSeconds: 30))
        let before = try await fleet.waitRollout(id, "a member at work") { status in
            status.agents.contains { rank($0.progress.state) >= 2 } && status.totals.healthy < 2
        }
        let eventsBefore = try await fleet.events()

        try await fleet.killCoordinatorAndWait()
        try await fleet.startCoordinator()
        let after = try await fleet.wait("the restarted coordinator to answer") { try await fleet.rollout(id) }
        // Nothing acknowledged is lost: the rollout as it was, every agent's row as far along
        // as before (or further: reports committed between the read and the kill), every event.
        #expect(after.state == .running)
        #expect(after.releaseVersion == before.releaseVersion && after.policy == before.policy)
        #expect(after.createdAtMs == before.createdAtMs && after.startedAtMs == before.startedAtMs)
        #expect(after.agents.count == before.agents.count)
        for row in before.agents {
            let now = try #require(after.agents.first { $0.agentID == row.agentID })
            #expect(rank(now.progress.state) >= rank(row.progress.state), "\(row.agentID): \(row.progress.state) → \(now.progress.state)")
        }
        let eventsAfter = try await fleet.events()
        #expect(Array(eventsAfter.prefix(eventsBefore.count)) == eventsBefore)

        // The agents reconnect by themselves and the rollout continues where it stopped.
        let done = try await fleet.waitRollout(id, "succeeded") { $0.state == .succeeded || $0.state == .failed }
        #expect(done.state == .succeeded, "\(done.message)")
        #expect(done.totals.healthy == 4)
        _ = try await fleet.wait("every agent on 1.1: \(Self.versions(nodes))") { nodes.allSatisfy { $0.settled(on: "1.1") } ? true : nil }
        try await Self.expectUpgradedOnce(fleet, nodes, rollout: id)
    }

    @Test("kill -9 a leader mid-download: the acting leader takes over with epoch + 1, everyone ends on 1.1 once, the old leader rejoins as a member")
    func leaderKilled() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let total = try Bundles.chunkCount(bundles.good)
        let subnets = try await fleet.makeAgents(perSubnet: 3)
        let nodes = subnets.flatMap { $0 }
        let cluster = "127.0.1.0/24"
        let (oldLeader, acting, other) = (subnets[0][0], subnets[0][1], subnets[0][2])
        let epoch = try #require(try await fleet.cluster(cluster)).leaderEpoch
        #expect(try await fleet.cluster(cluster)?.leaderID == oldLeader.id)
        try await fleet.push(bundles.good, version: "1.1")
        let id = try await fleet.startRollout("1.1", RolloutPolicy(maxUnavailable: 1, maxParallelClusters: 2, healthTimeoutSeconds: 30))

        // Mid-download: a member has some chunks from its leader staged, not all (one member at
        // a time, in id order: the member that will take over).
        let staged = try await fleet.waitFast("a member of \(cluster) mid-download") {
            [acting, other].lazy.compactMap { node in node.stagedChunks().flatMap { $0 > 0 && $0 < total ? (node.id, $0) : nil } }.first
        }
        oldLeader.kill()  // both processes: a dead server
        print("killed the leader \(oldLeader.id) with \(staged.0) at chunk \(staged.1) of \(total)")

        let takeover = try await fleet.wait("\(acting.id) to lead \(cluster)") {
            try await fleet.cluster(cluster).flatMap { $0.leaderID == acting.id ? $0 : nil }
        }
        #expect(takeover.leaderEpoch == epoch + 1)
        let changes = try await fleet.events().filter { $0.kind == "cluster.leader-changed" && $0.detail.contains("\(oldLeader.id) → \(acting.id)") }
        #expect(changes.count == 1)

        // The old leader comes back: a member now, under the acting leader.
        try oldLeader.start()
        let rejoined = try await fleet.wait("\(oldLeader.id) to register again") {
            try await fleet.agentInfo(oldLeader.id).flatMap { $0.connected ? $0 : nil }
        }
        #expect(rejoined.role == .member)

        let done = try await fleet.waitRollout(id, "succeeded") { $0.state == .succeeded || $0.state == .failed }
        #expect(done.state == .succeeded, "\(done.message)")
        #expect(done.totals.healthy == 6)
        _ = try await fleet.wait("every agent on 1.1: \(Self.versions(nodes))") { nodes.allSatisfy { $0.settled(on: "1.1") } ? true : nil }
        try await Self.expectUpgradedOnce(fleet, nodes, rollout: id)
        // The acting leader upgraded last in its cluster: after both its members were healthy.
        let events = try await fleet.events().filter { $0.kind == "rollout.agent-state" && $0.rolloutID == id }
        let leaderInstalls = try #require(events.first { $0.detail.hasPrefix("agent \(acting.id): ") && $0.detail.hasSuffix("→ installing") })
        for member in [oldLeader, other] {
            let healthy = try #require(events.first { $0.detail.hasPrefix("agent \(member.id): ") && $0.detail.hasSuffix("→ healthy") })
            #expect(healthy.id < leaderInstalls.id, "\(member.id) healthy after the leader \(acting.id) began installing")
        }
    }
}
