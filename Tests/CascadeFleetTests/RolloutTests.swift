import CascadeAPI
import CascadeTestSupport
import Foundation
import Testing

/// DESIGN.md §1 end to end with real processes: three /24 clusters of four agent pairs.
@Suite("Fleet rollout", .serialized)
struct FleetRolloutTests {
    @Test("3 clusters × 4 agents go 1.0 → 1.1: every member healthy before its leader starts, the second instruction from the best upgraded member, each cluster served once by the coordinator")
    func fullRollout() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let subnets = try await fleet.makeAgents(subnets: [1, 2, 3], perSubnet: 4)
        let release = try #require(try await fleet.push(bundles.good, version: "1.1"))
        let id = try await fleet.startRollout("1.1", RolloutPolicy(
            maxUnavailable: 2, maxParallelClusters: 3, failureBudgetPercent: 0, healthTimeoutSeconds: 30))
        let status = try await fleet.waitRollout(id, "succeeded", within: .seconds(180)) { $0.state == .succeeded }
        #expect(status.totals.healthy == 12)
        _ = try await fleet.wait("every agent's main program and upgrader on 1.1: \(FaultTests.versions(fleet.agents))") {
            fleet.agents.allSatisfy { $0.settled(on: "1.1") } ? true : nil
        }

        let events = try await fleet.events()
        for nodes in subnets {
            let prefix = "127.0.\(nodes[0].address.split(separator: ".")[2]).0/24"
            // The first agent of each subnet registered first, so it leads (idle CPU 0.9, 0.8, 0.7, 0.6).
            let leader = nodes[0]
            let members = nodes.dropFirst().map(\.id)
            let states = events.filter { $0.kind == "rollout.agent-state" && $0.rolloutID == id }
            func position(_ agent: String, _ match: (String) -> Bool) -> Int? {
                states.firstIndex { $0.detail.hasPrefix("agent \(agent): ") && match(String($0.detail.dropFirst("agent \(agent): ".count))) }
            }
            let leaderStart = try #require(position(leader.id) { $0.hasPrefix("pending →") }, "\(leader.id) never left pending")
            for member in members {
                let healthy = try #require(position(member) { $0.hasSuffix("→ healthy") || $0.contains("→ healthy ") }, "\(member) never became healthy")
                #expect(healthy < leaderStart, "\(member) became healthy after its leader \(leader.id) started")
            }
            // The sixth server: the upgraded member with the highest idle weight (the second
            // agent) sent the leader the second instruction — cued by the leader itself, or by
            // the coordinator if the leader had not yet (then an event names it).
            let senders = leader.log.split(separator: "\n").compactMap { line -> String? in
                guard let range = line.range(of: "second instruction from ") else { return nil }
                return String(line[range.upperBound...].prefix { $0 != ":" })
            }
            #expect(senders == [nodes[1].id], "\(prefix): second instruction from \(senders)")
            let cues = events.filter { $0.kind == "rollout.second-instruction-cue" && members.contains($0.agentID) }
            #expect(cues.allSatisfy { $0.agentID == nodes[1].id }, "\(prefix): cues \(cues.map(\.agentID))")
            // The leader fetched the release from the coordinator once; members got it from the leader.
            let cluster = try #require(status.clusterProgress.first { $0.clusterID == prefix })
            #expect(cluster.bytesFromCoordinator == release.size, "\(prefix): \(cluster.bytesFromCoordinator) of \(release.size) bytes")
        }
        // Nobody was upgraded twice.
        for node in fleet.agents {
            let transitions = try await fleet.transitions(node.id, rollout: id)
            #expect(transitions.filter { $0.contains("→ healthy") }.count == 1, "\(node.id): \(transitions)")
        }
    }
}
