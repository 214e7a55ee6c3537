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
