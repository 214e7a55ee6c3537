import CascadeAPI
import CascadeTestSupport
import Foundation
import Testing

@Suite("cascadectl fleet views")
struct CtlFleetTests {
    @Test("clusters list, agents list --cluster, clusters move-leader and events --cluster")
    func fleet() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a2-01", 0.7)])
        defer { for agent in agents.values { agent.disconnect() } }
        let ctl = try Ctl(fixture: fixture)

        let clusters = try await ctl.run(["clusters", "list"])
        #expect(clusters.status == 0, "\(clusters)")
        #expect(clusters.lines.first?.hasPrefix("CLUSTER       LEADER  LEADER ADDRESS") == true, "\(clusters)")
        #expect(clusters.lines.dropFirst().map { String($0.prefix(21)) } == ["127.0.1.0/24  a1-01  ", "127.0.2.0/24  a2-01  "], "\(clusters)")

        let members = try await ctl.run(["agents", "list", "--cluster", "127.0.1.0/24", "--json"])
        let rows = try #require(try members.json() as? [[String: Any]], "\(members)")
        #expect(rows.compactMap { $0["agent"] as? String } == ["a1-01", "a1-02"])
        #expect(rows.first?["role"] as? String == "leader")
        #expect(rows.first?["address"] as? String == "127.0.1.11")

        let table = try await ctl.run(["agents", "list"])
        #expect(table.lines.count == 4, "\(table)")
        #expect(table.lines.first?.hasPrefix("AGENT  ADDRESS     CLUSTER       ROLE") == true, "\(table)")

        let moved = try await ctl.run(["clusters", "move-leader", "127.0.1.0/24", "a1-02"])
        #expect(moved.status == 0, "\(moved)")
        #expect(moved.lines == ["cluster 127.0.1.0/24: leader a1-02 (epoch 2)"])

        let unknown = try await ctl.run(["clusters", "move-leader", "10.9.9.0/24", "a1-02"])
        #expect(unknown.status == 1)
        #expect(unknown.errorOutput == "cascadectl: no cluster 10.9.9.0/24\n")

        let events = try await ctl.run(["events", "--cluster", "127.0.1.0/24", "--json"])
        let list = try #require(try events.json() as? [[String: Any]], "\(events)")
        #expect(list.contains { ($0["actor"] as? String)?.contains("bob") == true }, "\(events)")
        let latest = try await ctl.run(["events", "--limit", "1"])
        #expect(latest.lines.count == 2, "\(latest)")
        #expect(latest.lines.first?.hasPrefix(" ID  TIME") == true || latest.lines.first?.hasPrefix("ID  TIME") == true, "\(latest)")
    }

    @Test("events --cluster finds a rollout's cluster-state events, which carry the rollout and the cluster")
    func clusterStateEvents() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a2-01", 0.7)])
        defer { for agent in agents.values { agent.disconnect() } }
        let id = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        let leader = try #require(agents["a1-01"])
        // The first cluster's order has gone out: its cluster started (wave 1, one at a time).
        _ = try await leader.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        let ctl = try Ctl(fixture: fixture)
        let events = try await ctl.run(["events", "--cluster", "127.0.1.0/24", "--json"])
        #expect(events.status == 0, "\(events)")
        let list = try #require(try events.json() as? [[String: Any]], "\(events)")
        let states = list.filter { $0["kind"] as? String == "rollout.cluster-state" }
        #expect(!states.isEmpty, "\(events)")
        #expect(states.allSatisfy { $0["cluster"] as? String == "127.0.1.0/24" && ($0["rollout"] as? NSNumber)?.uint64Value == id }, "\(events)")
        // The other cluster's events are not among them.
        #expect(list.allSatisfy { ($0["cluster"] as? String) == "127.0.1.0/24" }, "\(events)")
    }
}
