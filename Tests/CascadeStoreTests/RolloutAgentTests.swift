@testable import CascadeStore
import Testing

/// The legal per-agent moves, spelled out: forward (skipping allowed), any working state to
/// failed, anything attempted to rolled-back.
private let legalAgentMoves: Set<String> = [
    "pending→instructed", "pending→downloading", "pending→installing", "pending→healthy", "pending→failed",
    "instructed→downloading", "instructed→installing", "instructed→healthy", "instructed→failed", "instructed→rolled-back",
    "downloading→installing", "downloading→healthy", "downloading→failed", "downloading→rolled-back",
    "installing→healthy", "installing→failed", "installing→rolled-back",
]

private let allAgentPairs: [(RolloutAgentState, RolloutAgentState)] = RolloutAgentState.allCases.flatMap { from in
    RolloutAgentState.allCases.map { (from, $0) }
}

@Suite("Per-agent rollout states and deadlines")
struct RolloutAgentTests {
    /// A running rollout whose one cluster (a1, a2) is running; health timeout 60 s.
    static func running() throws -> (StoreFixture, Int64) {
        let fixture = try StoreFixture()
        try fixture.register("a1", "127.0.1.1")
        try fixture.register("a2", "127.0.1.2")
        try fixture.pushRelease("2.0.0")
        let id = try fixture.store.createRollout(release: "2.0.0", policy: RolloutPolicy(healthTimeoutSeconds: 60), actor: .operator("o")).id
        _ = try fixture.store.transitionRollout(id: id, to: .running, reason: nil, actor: .coordinator())
        _ = try fixture.store.transitionRolloutCluster(rolloutID: id, clusterID: 1, to: .running, reason: nil, actor: .coordinator())
        return (fixture, id)
    }

    static func path(to state: RolloutAgentState) -> [RolloutAgentState] {
        switch state {
        case .pending: []
        case .instructed: [.instructed]
        case .downloading: [.instructed, .downloading]
        case .installing: [.instructed, .downloading, .installing]
        case .healthy: [.instructed, .downloading, .installing, .healthy]
        case .failed: [.failed]
        case .rolledBack: [.instructed, .downloading, .installing, .rolledBack]
        }
    }

    @Test("the agent state table matches the specification", arguments: allAgentPairs)
    func table(from: RolloutAgentState, to: RolloutAgentState) {
        #expect(from.canTransition(to: to) == legalAgentMoves.contains("\(from.rawValue)→\(to.rawValue)"))
    }

    @Test("every agent transition through the store is applied, a no-op, or refused", arguments: allAgentPairs)
    func transition(from: RolloutAgentState, to: RolloutAgentState) throws {
        let (fixture, id) = try Self.running()
        let store = fixture.store
        for step in Self.path(to: from) {
            _ = try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: step, actor: .agent("a1"))
        }
        let before = try #require(try store.rolloutAgent(rolloutID: id, agentID: "a1"))
        #expect(before.state == from)
        fixture.clock.advance(.seconds(3))
        if from == to {
            #expect(try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: to, actor: .agent("a1")) == before)
        } else if legalAgentMoves.contains("\(from.rawValue)→\(to.rawValue)") {
            let after = try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: to, error: "e", actor: .agent("a1"))
            #expect(after.state == to)
            #expect(after.enteredAt == fixture.clock.timestamp)
            #expect(after.error == "e")
            #expect(try fixture.eventDetails(.rolloutAgentState).last == "agent a1: \(from.rawValue) → \(to.rawValue): e")
        } else {
            let error = #expect(throws: StoreError.self) {
                try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: to, actor: .agent("a1"))
            }
            #expect(error?.code == .illegalTransition)
            #expect(error?.message == "agent 'a1' is \(from.rawValue) in rollout \(id) and cannot become \(to.rawValue)")
            #expect(try store.rolloutAgent(rolloutID: id, agentID: "a1") == before)
        }
    }

    @Test("each working state gets its hard deadline; terminal states have none")
    func deadlines() throws {
        let (fixture, id) = try Self.running()
        let store = fixture.store
        let t0 = fixture.clock.timestamp
        #expect(try store.rolloutAgent(rolloutID: id, agentID: "a1")?.deadline == nil)
        let instructed = try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: .instructed, actor: .coordinator())
        #expect(instructed.deadline == t0 + .seconds(120))
        fixture.clock.advance(.seconds(10))
        let downloading = try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: .downloading, actor: .agent("a1"))
        #expect(downloading.deadline == t0 + .seconds(10) + .seconds(1800))
        #expect(try store.recordDownloadProgress(rolloutID: id, agentID: "a1", bytes: 4096))
        fixture.clock.advance(.seconds(10))
        let installing = try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: .installing, actor: .agent("a1"))
        #expect(installing.deadline == t0 + .seconds(20) + .seconds(60 + 120))
        #expect(installing.bytes == 4096)
        #expect(try !store.recordDownloadProgress(rolloutID: id, agentID: "a1", bytes: 9999))
        let healthy = try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: .healthy, actor: .agent("a1"))
        #expect(healthy.deadline == nil)
    }

    @Test("agents past their deadline are listed and failed with the state they were stuck in")
    func expiry() throws {
        let (fixture, id) = try Self.running()
        let store = fixture.store
        _ = try store.transitionRolloutAgents(rolloutID: id, agentIDs: ["a1", "a2"], to: .instructed, actor: .coordinator())
        fixture.clock.advance(.seconds(60))
        _ = try store.transitionRolloutAgent(rolloutID: id, agentID: "a2", to: .downloading, actor: .agent("a2"))
        fixture.clock.advance(.seconds(59))
        #expect(try store.expiredRolloutAgents().isEmpty)
        fixture.clock.advance(.seconds(1))  // a1: exactly 120 s in instructed
        #expect(try store.expiredRolloutAgents().map(\.agentID) == ["a1"])
        let failed = try store.failExpiredRolloutAgents()
        #expect(failed.map(\.agentID) == ["a1"])
        #expect(failed.first?.state == .failed)
        #expect(failed.first?.error == "timed out: instructed for longer than 120 s")
        #expect(failed.first?.deadline == nil)
        #expect(try store.expiredRolloutAgents().isEmpty)
        #expect(try store.expiredRolloutAgents(at: fixture.clock.timestamp + .seconds(1800)).map(\.agentID) == ["a2"])
        let progress = try store.rolloutProgress(rolloutID: id)
        #expect(progress.agents == [.failed: 1, .downloading: 1])
        #expect(progress.clusters == [.running: 1])
        #expect(try fixture.store.events(kind: .rolloutAgentState).last?.actor == .coordinator())
    }

    @Test("a paused rollout's deadlines stand still: nothing expires while paused, and the resume moves each deadline by the pause")
    func deadlinesPause() throws {
        let (fixture, id) = try Self.running()
        let store = fixture.store
        let t0 = fixture.clock.timestamp
        _ = try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: .instructed, actor: .coordinator())
        _ = try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: .downloading, actor: .agent("a1"))
        fixture.clock.advance(.seconds(100))
        _ = try store.transitionRollout(id: id, to: .paused, reason: nil, actor: .operator("alice"))
        // An hour paused: far past the 30 min download deadline, and still not late.
        fixture.clock.advance(.seconds(3600))
        #expect(try store.failExpiredRolloutAgents().isEmpty)
        #expect(try store.rolloutAgent(rolloutID: id, agentID: "a1")?.state == .downloading)
        _ = try store.transitionRollout(id: id, to: .running, reason: nil, actor: .operator("alice"))
        #expect(try store.rolloutAgent(rolloutID: id, agentID: "a1")?.deadline == t0 + .seconds(1800) + .seconds(3600))
        // It has what was left of its 30 minutes (1700 s) after the resume, not a second more.
        fixture.clock.advance(.seconds(1699))
        #expect(try store.failExpiredRolloutAgents().isEmpty)
        fixture.clock.advance(.seconds(1))
        #expect(try store.failExpiredRolloutAgents().map(\.agentID) == ["a1"])
    }

    @Test("instructions need a running rollout and cluster; a batch is all or nothing")
    func instructionPreconditions() throws {
        let (fixture, id) = try Self.running()
        let store = fixture.store
        _ = try store.transitionRollout(id: id, to: .paused, reason: nil, actor: .operator("o"))
        #expect(throws: StoreError(.failedPrecondition, "rollout \(id) is paused; agent 'a1' cannot be instructed")) {
            try store.transitionRolloutAgent(rolloutID: id, agentID: "a1", to: .instructed, actor: .coordinator())
        }
        _ = try store.transitionRollout(id: id, to: .running, reason: nil, actor: .operator("o"))
        _ = try store.transitionRolloutAgent(rolloutID: id, agentID: "a2", to: .failed, actor: .coordinator())
        #expect(throws: StoreError.self) {
            try store.transitionRolloutAgents(rolloutID: id, agentIDs: ["a1", "a2"], to: .instructed, actor: .coordinator())
        }
        #expect(try store.rolloutAgent(rolloutID: id, agentID: "a1")?.state == .pending)
        #expect(throws: StoreError(.notFound, "agent 'zz' is not part of rollout \(id)")) {
            try store.transitionRolloutAgent(rolloutID: id, agentID: "zz", to: .failed, actor: .coordinator())
        }
    }

    @Test("an agent joining a covered cluster later is added as pending; others are refused")
    func lateJoiner() throws {
        let (fixture, id) = try Self.running()
        try fixture.register("a3", "127.0.1.3")
        try fixture.register("b1", "127.0.2.1")
        let added = try fixture.store.addRolloutAgent(rolloutID: id, agentID: "a3")
        #expect(added.state == .pending)
        #expect(added.clusterID == 1)
        #expect(try fixture.store.addRolloutAgent(rolloutID: id, agentID: "a3") == added)
        #expect(throws: StoreError(.failedPrecondition, "agent 'b1' is in 127.0.2.0/24, which rollout \(id) does not cover")) {
            try fixture.store.addRolloutAgent(rolloutID: id, agentID: "b1")
        }
        #expect(try fixture.store.rolloutAgents(rolloutID: id, clusterID: 1).map(\.agentID) == ["a1", "a2", "a3"])
    }

    @Test("the sixth server is the live healthy member with the highest weight, never the leader")
    func sixthServer() throws {
        let (fixture, id) = try Self.running()  // a1 leads, a2 is a member
        let store = fixture.store
        try fixture.register("a3", "127.0.1.3", cpu: 0.9, memory: 0.9)
        try fixture.register("a4", "127.0.1.4", cpu: 0.1, memory: 0.1)
        for agent in ["a3", "a4"] { _ = try store.addRolloutAgent(rolloutID: id, agentID: agent) }
        #expect(try store.bestHealthyMember(rolloutID: id, clusterID: 1) == nil)
        for agent in ["a1", "a2", "a3", "a4"] {
            _ = try store.transitionRolloutAgent(rolloutID: id, agentID: agent, to: agent == "a2" ? .failed : .healthy, actor: .agent(agent))
        }
        #expect(try store.bestHealthyMember(rolloutID: id, clusterID: 1)?.id == "a3")
        try store.markAgentOffline(id: "a3", reason: "restarting")
        #expect(try store.bestHealthyMember(rolloutID: id, clusterID: 1)?.id == "a4")
    }
}
