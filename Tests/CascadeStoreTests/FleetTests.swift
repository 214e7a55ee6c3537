@testable import CascadeStore
import Testing

@Suite("Agents, clusters and leaders in the store")
struct FleetTests {
    @Test("registration groups agents by subnet and makes the first agent of a cluster its leader")
    func registration() throws {
        let fixture = try StoreFixture()
        let first = try fixture.register("a1", "127.0.1.10", cpu: 0.2, memory: 0.2)
        #expect(first.cluster.prefix == "127.0.1.0/24")
        #expect(first.role == .leader)
        #expect(first.cluster.leaderID == "a1")
        #expect(first.cluster.leaderEpoch == 1)
        #expect(first.leader?.id == "a1")
        #expect(first.leaderChanges.map(\.leaderID) == ["a1"])

        let second = try fixture.register("a2", "127.0.1.11", cpu: 0.9, memory: 0.9)
        #expect(second.role == .member)
        #expect(second.cluster.id == first.cluster.id)
        #expect(second.leader?.id == "a1")
        #expect(second.leaderChanges.isEmpty)

        let other = try fixture.register("b1", "fd00:1:2:3::9")
        #expect(other.cluster.prefix == "fd00:1:2:3::/64")
        #expect(other.role == .leader)

        #expect(try fixture.store.clusters().map(\.prefix) == ["127.0.1.0/24", "fd00:1:2:3::/64"])
        #expect(try fixture.store.agents(inCluster: first.cluster.id).map(\.id) == ["a1", "a2"])
        let stored = try #require(try fixture.store.agent(id: "a2"))
        #expect(stored.address == "127.0.1.11")
        #expect(stored.port == 7000)
        #expect(stored.cpuIdle == 0.9)
        #expect(abs(stored.weight - 0.9) < 1e-12)
        #expect(stored.isLive)
        #expect(stored.lastSeen == fixture.clock.timestamp)
        #expect(try fixture.eventDetails(.clusterCreated) == ["cluster 1 for subnet 127.0.1.0/24", "cluster 2 for subnet fd00:1:2:3::/64"])
        #expect(try fixture.eventDetails(.agentRegistered) == [
            "registered at 127.0.1.10:7000 in 127.0.1.0/24, main 1.0.0, upgrader 1.0.0",
            "registered at 127.0.1.11:7000 in 127.0.1.0/24, main 1.0.0, upgrader 1.0.0",
            "registered at fd00:1:2:3::9:7000 in fd00:1:2:3::/64, main 1.0.0, upgrader 1.0.0",
        ])
    }

    @Test("a batch of registrations commits together; a refused one is rolled back alone and reported in its slot")
    func registrationBatch() throws {
        let fixture = try StoreFixture()
        func registration(_ id: String, _ address: String) -> AgentRegistration {
            AgentRegistration(id: id, address: address, port: 7000, mainVersion: "1.0.0", upgraderVersion: "1.0.0",
                              cpuIdle: 0.5, memoryIdle: 0.5)
        }
        let results = try fixture.store.registerAgents([
            registration("a1", "127.0.1.10"), registration("bad", "not an address"), registration("a2", "127.0.1.11"),
        ])
        #expect(results.count == 3)
        let first = try results[0].get()
        #expect(first.assignment.role == .leader)
        #expect(first.memberIDs == ["a1"])  // a leader learns its members; a2 registers after it
        #expect(throws: StoreError.self) { try results[1].get() }
        let third = try results[2].get()
        #expect(third.assignment.role == .member && third.assignment.cluster.leaderID == "a1")
        #expect(third.memberIDs.isEmpty)
        #expect(try fixture.store.agent(id: "bad") == nil)
        #expect(try fixture.store.agents(inCluster: first.assignment.cluster.id).map(\.id).sorted() == ["a1", "a2"])
        // Committed: a fresh store on the same files sees both, and their events.
        let reopened = try CoordinatorStore(dataDirectory: fixture.directory.path, clock: fixture.clock.function)
        #expect(try reopened.agent(id: "a1") != nil && reopened.agent(id: "a2") != nil)
        #expect(try reopened.events(kind: .agentRegistered).count == 2)
    }

    @Test("a custom prefix length puts two /24s in one cluster")
    func customPrefix() throws {
        let fixture = try StoreFixture(configuration: StoreConfiguration(prefixLengths: try PrefixLengths(ipv4: 16)))
        let a = try fixture.register("a", "127.0.1.1")
        let b = try fixture.register("b", "127.0.2.1")
        #expect(a.cluster.prefix == "127.0.0.0/16")
        #expect(b.cluster.id == a.cluster.id)
    }

    @Test("heartbeats with changing weights never move a live leader")
    func stability() throws {
        let fixture = try StoreFixture()
        try fixture.register("a1", "127.0.1.1", cpu: 0.1, memory: 0.1)
        try fixture.register("a2", "127.0.1.2", cpu: 0.5, memory: 0.5)
        for round in 0..<5 {
            fixture.clock.advance(.seconds(10))
            let member = try fixture.store.recordHeartbeat(Heartbeat(agentID: "a2", cpuIdle: 1, memoryIdle: 1))
            let leader = try fixture.store.recordHeartbeat(Heartbeat(agentID: "a1", cpuIdle: 0.0, memoryIdle: Double(round) / 10))
            #expect(member.leaderChanges.isEmpty)
            #expect(leader.leaderChanges.isEmpty)
            #expect(leader.role == .leader)
        }
        // A re-registration (agent restart) keeps leadership as well.
        let again = try fixture.register("a1", "127.0.1.1", cpu: 0, memory: 0)
        #expect(again.role == .leader)
        #expect(try fixture.store.reconcileLeaders().isEmpty)
        let cluster = try #require(try fixture.store.cluster(prefix: "127.0.1.0/24"))
        #expect(cluster.leaderID == "a1")
        #expect(cluster.leaderEpoch == 1)
        #expect(try fixture.store.events(kind: .leaderChanged).count == 1)
        #expect(try fixture.store.agent(id: "a2")?.weight == 1)
    }

    @Test("a lost leader is replaced by the highest-weight live member; the epoch bumps and an event is written")
    func leaderLost() throws {
        let fixture = try StoreFixture()
        try fixture.register("a1", "127.0.1.1", cpu: 0.9, memory: 0.9)
        try fixture.register("a2", "127.0.1.2", cpu: 0.5, memory: 0.5)
        try fixture.register("a3", "127.0.1.3", cpu: 0.6, memory: 0.1)  // 0.40
        try fixture.register("a4", "127.0.1.4", cpu: 0.8, memory: 0.8)  // highest, but will go silent too
        fixture.clock.advance(.seconds(20))
        _ = try fixture.store.recordHeartbeats(
            [Heartbeat(agentID: "a2", cpuIdle: 0.5, memoryIdle: 0.5), Heartbeat(agentID: "a3", cpuIdle: 0.6, memoryIdle: 0.1)],
            actor: .agent("a1"))
        fixture.clock.advance(.seconds(15))  // a1 and a4 last seen 35 s ago: not live
        let changes = try fixture.store.reconcileLeaders()
        #expect(changes == [LeaderChange(
            clusterID: 1, prefix: "127.0.1.0/24", previousLeaderID: "a1", leaderID: "a2", epoch: 2,
            reason: "leader a1 not heard from since 2023-11-14T22:13:20.000Z")])
        let cluster = try #require(try fixture.store.cluster(id: 1))
        #expect(cluster.leaderID == "a2")
        #expect(cluster.leaderEpoch == 2)
        #expect(try fixture.store.agent(id: "a1")?.role == .member)
        #expect(try fixture.store.agent(id: "a2")?.role == .leader)
        let events = try fixture.store.events(kind: .leaderChanged)
        #expect(events.map(\.detail) == [
            "leader none → a1, epoch 1: the cluster had no leader",
            "leader a1 → a2, epoch 2: leader a1 not heard from since 2023-11-14T22:13:20.000Z",
        ])
        #expect(events.last?.actor == .coordinator())
        #expect(events.last?.subject == "cluster:127.0.1.0/24")

        // The old leader coming back does not take leadership back.
        let back = try fixture.store.recordHeartbeat(Heartbeat(agentID: "a1", cpuIdle: 1, memoryIdle: 1))
        #expect(back.role == .member)
        #expect(back.leader?.id == "a2")
        #expect(back.cluster.leaderEpoch == 2)
    }

    @Test("an agent going offline hands leadership on in the same call; ties go to the smallest id")
    func offline() throws {
        let fixture = try StoreFixture()
        try fixture.register("leader", "127.0.2.1", cpu: 1, memory: 1)
        try fixture.register("m-b", "127.0.2.2", cpu: 0.5, memory: 0.5)
        try fixture.register("m-a", "127.0.2.3", cpu: 0.5, memory: 0.5)
        #expect(try fixture.store.markAgentOffline(id: "m-b", reason: "session closed") == nil)
        let change = try #require(try fixture.store.markAgentOffline(id: "leader", reason: "session closed"))
        #expect(change.leaderID == "m-a")
        #expect(change.epoch == 2)
        #expect(change.reason == "leader leader is offline")
        #expect(try fixture.eventDetails(.agentOffline) == ["session closed", "session closed"])
        // With every agent offline the last leader stays recorded, without an epoch bump.
        #expect(try fixture.store.markAgentOffline(id: "m-a", reason: "session closed") == nil)
        #expect(try fixture.store.cluster(id: 1)?.leaderID == "m-a")
        #expect(try fixture.store.cluster(id: 1)?.leaderEpoch == 2)
        // The first agent back becomes leader.
        let back = try fixture.store.recordHeartbeat(Heartbeat(agentID: "m-b", cpuIdle: 0.1, memoryIdle: 0.1))
        #expect(back.role == .leader)
        #expect(back.cluster.leaderEpoch == 3)
    }

    @Test("an operator moves leadership to a live member; dead or foreign agents are refused")
    func operatorMove() throws {
        let fixture = try StoreFixture()
        try fixture.register("a1", "127.0.1.1")
        try fixture.register("a2", "127.0.1.2")
        try fixture.register("b1", "127.0.2.1")
        let change = try #require(try fixture.store.moveLeader(clusterID: 1, to: "a2", reason: "maintenance on a1", actor: .operator("alice")))
        #expect(change.previousLeaderID == "a1")
        #expect(change.epoch == 2)
        #expect(try fixture.store.events(kind: .leaderChanged).last?.actor == .operator("alice"))
        #expect(try fixture.eventDetails(.leaderChanged).last == "leader a1 → a2, epoch 2: moved by operator alice: maintenance on a1")
        #expect(try fixture.store.moveLeader(clusterID: 1, to: "a2", reason: "again", actor: .operator("alice")) == nil)
        #expect(throws: StoreError(.failedPrecondition, "agent 'b1' is in 127.0.2.0/24, not in 127.0.1.0/24")) {
            try fixture.store.moveLeader(clusterID: 1, to: "b1", reason: "", actor: .operator("alice"))
        }
        try fixture.store.markAgentOffline(id: "a1", reason: "gone")
        #expect(throws: StoreError(.failedPrecondition, "agent 'a1' is not live and cannot lead 127.0.1.0/24")) {
            try fixture.store.moveLeader(clusterID: 1, to: "a1", reason: "", actor: .operator("alice"))
        }
        #expect(throws: StoreError(.notFound, "no agent 'zz' is registered")) {
            try fixture.store.moveLeader(clusterID: 1, to: "zz", reason: "", actor: .operator("alice"))
        }
    }

    @Test("a leader that re-registers from another subnet leaves its old cluster to the best live member")
    func moveSubnet() throws {
        let fixture = try StoreFixture()
        try fixture.register("a1", "127.0.1.1")
        try fixture.register("a2", "127.0.1.2")
        let moved = try fixture.register("a1", "127.0.3.1")
        #expect(moved.cluster.prefix == "127.0.3.0/24")
        #expect(moved.role == .leader)
        #expect(Set(moved.leaderChanges.map(\.prefix)) == ["127.0.1.0/24", "127.0.3.0/24"])
        #expect(try fixture.store.cluster(id: 1)?.leaderID == "a2")
        #expect(try fixture.eventDetails(.agentChanged) == [
            "re-registered at 127.0.3.1:7000 in 127.0.3.0/24, main 1.0.0, upgrader 1.0.0 (was in 127.0.1.0/24)",
        ])
        // The last member leaving empties the cluster's leadership.
        let left = try fixture.register("a2", "127.0.3.2")
        #expect(left.leaderChanges.map(\.leaderID) == [nil])
        #expect(try fixture.store.cluster(id: 1)?.leaderID == nil)
    }

    @Test("heartbeats record versions with an event, and unknown agents are reported, not recorded")
    func heartbeats() throws {
        let fixture = try StoreFixture()
        try fixture.register("a1", "127.0.1.1")
        let result = try fixture.store.recordHeartbeats(
            [Heartbeat(agentID: "a1", cpuIdle: 0.3, memoryIdle: 0.4, mainVersion: "1.1.0"), Heartbeat(agentID: "ghost", cpuIdle: 0, memoryIdle: 0)],
            actor: .agent("a1"))
        #expect(result.unknownAgentIDs == ["ghost"])
        let agent = try #require(try fixture.store.agent(id: "a1"))
        #expect(agent.mainVersion == "1.1.0")
        #expect(agent.upgraderVersion == "1.0.0")
        #expect(agent.cpuIdle == 0.3)
        #expect(try fixture.eventDetails(.agentChanged) == ["now main 1.1.0, upgrader 1.0.0 (was main 1.0.0, upgrader 1.0.0)"])
        #expect(throws: StoreError(.notFound, "no agent 'ghost' is registered")) {
            try fixture.store.recordHeartbeat(Heartbeat(agentID: "ghost", cpuIdle: 0, memoryIdle: 0))
        }
        #expect(throws: StoreError(.invalidArgument, "agent 'a1' reported idle ratios cpu 1.5, memory 0.0; both must be in [0, 1]")) {
            try fixture.store.recordHeartbeat(Heartbeat(agentID: "a1", cpuIdle: 1.5, memoryIdle: 0))
        }
    }
}
