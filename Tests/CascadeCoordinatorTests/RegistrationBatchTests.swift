import CascadeAPI
import CascadeCoordinator
import CascadeTestSupport
import Testing

@Suite("Registrations arriving together")
struct RegistrationBatchTests {
    @Test("30 agents registering at once in 3 subnets are all answered; each cluster has one leader, the one its members were told")
    func storm() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let agents = try (1...3).flatMap { subnet in
            try (1...10).map { host in try FakeAgent(fixture, id: "s\(subnet)-\(host)", address: "127.0.\(60 + subnet).\(host)") }
        }
        let assignments = try await withThrowingTaskGroup(of: (String, Assignment).self) { group in
            for (index, agent) in agents.enumerated() {
                group.addTask { (agent.id, try await agent.register(cpu: Double(index % 10) / 10)) }
            }
            var all: [String: Assignment] = [:]
            for try await (id, assignment) in group { all[id] = assignment }
            return all
        }
        #expect(assignments.count == 30)
        #expect(fixture.coordinator.metrics.registered == 30)
        let byCluster = Dictionary(grouping: assignments.values, by: \.clusterID)
        #expect(Set(byCluster.keys) == ["127.0.61.0/24", "127.0.62.0/24", "127.0.63.0/24"])
        for (cluster, members) in byCluster {
            #expect(members.count == 10, "\(cluster)")
            // Every agent of the cluster was told the same leader, and that leader was told it leads.
            let leaders = Set(members.map(\.leaderID))
            #expect(leaders.count == 1, "\(cluster): told \(leaders)")
            if let leader = leaders.first {
                #expect(assignments[leader]?.role == .leader, "\(cluster)")
            }
            #expect(members.filter { $0.role == .leader }.count <= 1, "\(cluster)")
        }
        for agent in agents { agent.disconnect() }
    }
}
