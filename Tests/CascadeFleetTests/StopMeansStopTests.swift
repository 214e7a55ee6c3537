import CascadeAPI
import CascadeTestSupport
import Foundation
import Testing

/// Faults at the moments the rollout record used to stop telling the truth, on real agent pairs
/// (DESIGN.md §6): the new main program killed during its health check, and a release that
/// exits at once against the failure budget on a 12-agent fleet.
extension FaultTests {
    @Test("kill -9 the new main program during its health check: the upgrader rolls the member back, the record says rolled-back, and the rollout ends partial, not succeeded")
    func newMainKilledDuringHealthCheck() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let nodes = try await fleet.makeAgents(subnets: [1], perSubnet: 3)[0]
        try await fleet.push(bundles.slowHealthy, version: "1.1")
        // One of three may fail (1 × 100 ≤ 40 × 3); the release needs 6 s to report healthy.
        let id = try await fleet.startRollout("1.1", RolloutPolicy(maxUnavailable: 1, failureBudgetPercent: 40, healthTimeoutSeconds: 30))
        // The first member whose new main program runs while its switch is not yet confirmed.
        let (victim, pid) = try await fleet.waitFast("a member's new main program in its health check") { () -> (FleetNode, Int32)? in
            for node in nodes.dropFirst() {
                guard FileManager.default.fileExists(atPath: "\(node.root)/state/switch-main.json"),
                      let text = try? String(contentsOfFile: "\(node.root)/state/main.pid", encoding: .utf8),
                      text.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(" 1.1"),
                      let pid = node.pid("main"), node.isOurs(pid) else { continue }
                return (node, pid)
            }
            return nil
        }
        kill(pid, SIGKILL)

        let done = try await fleet.waitRollout(id, "ended") { $0.state.isTerminal }
        let rows = Dictionary(uniqueKeysWithValues: done.agents.map { ($0.agentID, $0.progress) })
        #expect(done.state == .partial, "\(done.message): \(done.agents.map { "\($0.agentID) \($0.progress.state) \($0.progress.error)" }) \(done.clusterProgress)")
        #expect(done.message == "succeeded with 1 rolled back and 0 failed of 3 agents (within the failure budget of 40%)")
        #expect(rows[victim.id]?.state == .rolledBack, "\(String(describing: rows[victim.id]))")
        #expect(rows[victim.id]?.error.contains("exited before reporting healthy") == true, "\(rows[victim.id]?.error ?? "")")
        // The record equals what each agent runs.
        _ = try await fleet.wait("\(victim.id) on 1.0, the others on 1.1: \(Self.versions(nodes))") {
            nodes.allSatisfy { $0.settled(on: $0.id == victim.id ? "1.0" : "1.1") } ? true : nil
        }
        for node in nodes where node.id != victim.id { #expect(rows[node.id]?.state == .healthy) }
        let failures = try String(contentsOfFile: "\(victim.root)/state/failed-main.json", encoding: .utf8)
        #expect(failures.contains("1.1"), "\(failures)")
    }

    @Test("a release that exits at once, 12 agents, --failure-budget 10%: at most allowance + max-unavailable × parallel clusters agents install it, nothing is instructed after the failure, and the record equals what every agent runs")
    func budgetBoundsTheDamage() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let subnets = try await fleet.makeAgents(subnets: [1, 2, 3], perSubnet: 4)
        let nodes = subnets.flatMap { $0 }
        try await fleet.push(bundles.exitAtStart, version: "1.1")
        let (maxUnavailable, parallel, budget) = (2, 2, 10)
        let id = try await fleet.startRollout("1.1", RolloutPolicy(
            maxUnavailable: UInt32(maxUnavailable), maxParallelClusters: UInt32(parallel),
            failureBudgetPercent: UInt32(budget), healthTimeoutSeconds: 30))
        let failed = try await fleet.waitRollout(id, "failed") { $0.state.isTerminal }
        #expect(failed.state == .failed)
        // Spent at the second failure; a third reported in the same moment may be counted too.
        let spent = try #require(failed.message.firstMatch(of: /^the failure budget of 10% is spent: (\d+) of 12 agents failed/), "\(failed.message)")
        #expect((2...3).contains(Int(spent.1) ?? 0), "\(failed.message)")

        // Everything settles on 1.0; then nothing changes.
        _ = try await fleet.wait("every agent back on 1.0: \(Self.versions(nodes))") {
            nodes.allSatisfy { $0.settled(on: "1.0") } ? true : nil
        }
        let final = try await fleet.waitRollout(id, "no agent in flight") { status in
            !status.agents.contains { (1...3).contains(rank($0.progress.state)) }
        }
        // Who installed it, from the agents' own disks (the upgrader's failure record).
        let installed = nodes.filter { node in
            ((try? String(contentsOfFile: "\(node.root)/state/failed-main.json", encoding: .utf8)) ?? "").contains("1.1")
        }
        let allowance = nodes.count * budget / 100
        let bound = allowance + maxUnavailable * parallel
        print("budget bound: \(installed.count) of \(nodes.count) agents installed the release that exits at once (bound \(bound))")
        #expect(installed.count >= allowance + 1)
        #expect(installed.count <= bound, "\(installed.map(\.id))")
        // The record equals what they run: each that installed is rolled back; no one is healthy.
        let rows = Dictionary(uniqueKeysWithValues: final.agents.map { ($0.agentID, $0.progress) })
        for node in installed { #expect(rows[node.id]?.state == .rolledBack, "\(node.id): \(String(describing: rows[node.id]))") }
        #expect(!final.agents.contains { $0.progress.state == .healthy })
        for leader in subnets.map({ $0[0] }) { #expect(!leader.releases("main").contains("1.1"), "leaders upgrade last, never after a failure") }
        // Stop means stop: once the rollout failed, no agent was instructed.
        let events = try await fleet.events().filter { $0.rolloutID == id }
        let failedAt = try #require(events.first { $0.kind == "rollout.state" && $0.detail.contains("→ failed") }).id
        let later = events.filter { $0.id > failedAt && $0.kind == "rollout.agent-state" && $0.detail.hasSuffix("→ instructed") }
        #expect(later.isEmpty, "\(later.map(\.detail))")
    }
}
