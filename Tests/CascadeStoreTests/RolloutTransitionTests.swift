@testable import CascadeStore
import Testing

/// Every (from, to) pair of rollout states, with the legal ones spelled out here (not derived
/// from the code under test).
private let legalRolloutMoves: Set<String> = [
    "requested→running", "requested→failed", "requested→aborted",
    "running→paused", "running→succeeded", "running→partial", "running→failed", "running→aborted",
    "paused→running", "paused→failed", "paused→aborted",
]

private let allRolloutPairs: [(RolloutState, RolloutState)] = RolloutState.allCases.flatMap { from in
    RolloutState.allCases.map { (from, $0) }
}

@Suite("Rollout state machine")
struct RolloutTransitionTests {
    /// A fixture with one cluster of two agents and a complete release.
    static func fixture() throws -> StoreFixture {
        let fixture = try StoreFixture()
        try fixture.register("a1", "127.0.1.1")
        try fixture.register("a2", "127.0.1.2")
        try fixture.pushRelease("2.0.0")
        return fixture
    }

    /// Drives a new rollout to `state` by a legal path; in `running` its one cluster is finished
    /// already, so success is possible.
    static func rollout(in state: RolloutState, _ fixture: StoreFixture) throws -> Int64 {
        let store = fixture.store
        let id = try store.createRollout(release: "2.0.0", policy: RolloutPolicy(), actor: .operator("alice")).id
        func move(_ next: RolloutState) throws { _ = try store.transitionRollout(id: id, to: next, reason: nil, actor: .operator("alice")) }
        switch state {
        case .requested: break
        case .failed, .aborted: try move(state)
        case .running, .paused, .succeeded, .partial:
            try move(.running)
            _ = try store.transitionRolloutCluster(rolloutID: id, clusterID: 1, to: .running, reason: nil, actor: .coordinator())
            _ = try store.transitionRolloutCluster(rolloutID: id, clusterID: 1, to: .succeeded, reason: nil, actor: .coordinator())
            if state != .running { try move(state) }
        }
        #expect(try store.rollout(id: id)?.state == state)
        return id
    }

    @Test("the rollout state table matches the specification", arguments: allRolloutPairs)
    func table(from: RolloutState, to: RolloutState) {
        #expect(from.canTransition(to: to) == legalRolloutMoves.contains("\(from.rawValue)→\(to.rawValue)"))
    }

    @Test("every rollout transition through the store is applied or refused with FAILED_PRECONDITION's error",
          arguments: allRolloutPairs)
    func transition(from: RolloutState, to: RolloutState) throws {
        let fixture = try Self.fixture()
        let id = try Self.rollout(in: from, fixture)
        let before = try fixture.store.events(kind: .rolloutState).count
        fixture.clock.advance(.seconds(1))
        if legalRolloutMoves.contains("\(from.rawValue)→\(to.rawValue)") {
            let moved = try fixture.store.transitionRollout(id: id, to: to, reason: "because", actor: .operator("bob"))
            #expect(moved.state == to)
            #expect(moved.stateReason == "because")
            #expect(moved.updatedAt == fixture.clock.timestamp)
            #expect(moved.finishedAt == (to.isTerminal ? fixture.clock.timestamp : nil))
            let event = try #require(try fixture.store.events(kind: .rolloutState).last)
            #expect(event.actor == .operator("bob"))
            #expect(event.subject == "rollout:\(id)")
            #expect(event.detail.hasPrefix("\(from.rawValue) → \(to.rawValue): because"))
        } else {
            let error = #expect(throws: StoreError.self) {
                try fixture.store.transitionRollout(id: id, to: to, reason: nil, actor: .operator("bob"))
            }
            #expect(error?.code == .illegalTransition)
            #expect(error?.message == (from == to
                ? "rollout \(id) is already \(to.rawValue)"
                : "rollout \(id) is \(from.rawValue) and cannot become \(to.rawValue)"))
            #expect(try fixture.store.rollout(id: id)?.state == from)
            #expect(try fixture.store.events(kind: .rolloutState).count == before)
        }
    }

    @Test("start and finish times are kept across pause and resume")
    func timestamps() throws {
        let fixture = try Self.fixture()
        let created = fixture.clock.timestamp
        let id = try fixture.store.createRollout(release: "2.0.0", policy: RolloutPolicy(), actor: .operator("alice")).id
        fixture.clock.advance(.seconds(5))
        let started = fixture.clock.timestamp
        _ = try fixture.store.transitionRollout(id: id, to: .running, reason: nil, actor: .coordinator())
        fixture.clock.advance(.seconds(5))
        _ = try fixture.store.transitionRollout(id: id, to: .paused, reason: "look at canary", actor: .operator("alice"))
        fixture.clock.advance(.seconds(5))
        let resumed = try fixture.store.transitionRollout(id: id, to: .running, reason: nil, actor: .operator("alice"))
        #expect(resumed.createdAt == created)
        #expect(resumed.startedAt == started)
        #expect(resumed.finishedAt == nil)
        #expect(resumed.createdBy == .operator("alice"))
    }

    @Test("a rollout cannot succeed while a cluster is unfinished, and aborting aborts unfinished clusters")
    func clustersOnFinish() throws {
        let fixture = try Self.fixture()
        try fixture.register("b1", "127.0.2.1")
        let id = try fixture.store.createRollout(release: "2.0.0", policy: RolloutPolicy(canaryClusters: 1), actor: .operator("alice")).id
        #expect(try fixture.store.rolloutClusters(rolloutID: id).map { "\($0.prefix) w\($0.wave) \($0.state.rawValue)" } == [
            "127.0.1.0/24 w0 pending", "127.0.2.0/24 w1 pending",
        ])
        _ = try fixture.store.transitionRollout(id: id, to: .running, reason: nil, actor: .coordinator())
        _ = try fixture.store.transitionRolloutCluster(rolloutID: id, clusterID: 1, to: .running, reason: nil, actor: .coordinator())
        _ = try fixture.store.transitionRolloutCluster(rolloutID: id, clusterID: 1, to: .succeeded, reason: nil, actor: .coordinator())
        #expect(throws: StoreError(.failedPrecondition, "rollout \(id) still has 1 unfinished cluster(s) and cannot succeed")) {
            try fixture.store.transitionRollout(id: id, to: .succeeded, reason: nil, actor: .coordinator())
        }
        let aborted = try fixture.store.transitionRollout(id: id, to: .aborted, reason: "operator said so", actor: .operator("alice"))
        #expect(aborted.state == .aborted)
        #expect(try fixture.store.rolloutClusters(rolloutID: id).map(\.state) == [.succeeded, .aborted])
        #expect(try fixture.store.rolloutCluster(rolloutID: id, clusterID: 2)?.reason == "rollout aborted")
        #expect(try fixture.eventDetails(.rolloutState).last == "running → aborted: operator said so (1 unfinished cluster(s) aborted)")
        #expect(try fixture.store.activeRollouts().isEmpty)
    }

    @Test("cluster transitions follow their table; a repeated state is a no-op")
    func clusterTransitions() throws {
        let legal: Set<String> = ["pending→running", "pending→aborted", "running→succeeded", "running→failed", "running→aborted"]
        for from in RolloutClusterState.allCases {
            for to in RolloutClusterState.allCases {
                #expect(from.canTransition(to: to) == legal.contains("\(from.rawValue)→\(to.rawValue)"), "\(from) → \(to)")
            }
        }
        let fixture = try Self.fixture()
        let id = try fixture.store.createRollout(release: "2.0.0", policy: RolloutPolicy(), actor: .operator("alice")).id
        #expect(throws: StoreError(.failedPrecondition, "rollout \(id) is requested; cluster 127.0.1.0/24 cannot start")) {
            try fixture.store.transitionRolloutCluster(rolloutID: id, clusterID: 1, to: .running, reason: nil, actor: .coordinator())
        }
        #expect(throws: StoreError(.illegalTransition, "cluster 127.0.1.0/24 of rollout \(id) is pending and cannot become succeeded")) {
            try fixture.store.transitionRolloutCluster(rolloutID: id, clusterID: 1, to: .succeeded, reason: nil, actor: .coordinator())
        }
        _ = try fixture.store.transitionRollout(id: id, to: .running, reason: nil, actor: .coordinator())
        let running = try fixture.store.transitionRolloutCluster(rolloutID: id, clusterID: 1, to: .running, reason: nil, actor: .coordinator())
        let again = try fixture.store.transitionRolloutCluster(rolloutID: id, clusterID: 1, to: .running, reason: nil, actor: .coordinator())
        #expect(again == running)
        #expect(try fixture.eventDetails(.rolloutClusterState) == ["cluster 127.0.1.0/24: pending → running"])
    }

    @Test("a rollout needs a complete release, known clusters and a valid policy")
    func creation() throws {
        let fixture = try Self.fixture()
        let partial = NewRelease(
            version: "3.0.0", name: "x", manifest: [1], signature: [2], keyID: "k", blobDigest: .init(bytes: Array(repeating: 0, count: 32))!,
            size: 1, chunkSize: 1, chunkCount: 1, createdAt: fixture.clock.timestamp)
        try fixture.store.createRelease(partial, actor: .operator("alice"))
        #expect(throws: StoreError(.failedPrecondition, "release 3.0.0 is not completely pushed yet")) {
            try fixture.store.createRollout(release: "3.0.0", policy: RolloutPolicy(), actor: .operator("alice"))
        }
        #expect(throws: StoreError(.notFound, "no release 9.9.9")) {
            try fixture.store.createRollout(release: "9.9.9", policy: RolloutPolicy(), actor: .operator("alice"))
        }
        #expect(throws: StoreError(.invalidArgument, "no cluster 10.0.0.0/24 is known")) {
            try fixture.store.createRollout(release: "2.0.0", policy: RolloutPolicy(clusters: ["10.0.0.0/24"]), actor: .operator("alice"))
        }
        #expect(throws: StoreError(.invalidArgument, "the failure budget must be 0...100 percent, not 101")) {
            try fixture.store.createRollout(release: "2.0.0", policy: RolloutPolicy(failureBudgetPercent: 101), actor: .operator("alice"))
        }
        #expect(try fixture.store.rollouts().isEmpty)

        let policy = RolloutPolicy(
            clusters: ["127.0.1.9/24"], maxUnavailable: 3, maxParallelClusters: 2, canaryClusters: 0, failureBudgetPercent: 10,
            healthTimeoutSeconds: 90, rollback: true)
        let rollout = try fixture.store.createRollout(release: "2.0.0", policy: policy, actor: .operator("alice"))
        #expect(rollout.state == .requested)
        #expect(rollout.policy == policy)
        #expect(try fixture.store.rolloutAgents(rolloutID: rollout.id).map { "\($0.agentID) \($0.state.rawValue)" } == ["a1 pending", "a2 pending"])
        #expect(try fixture.eventDetails(.rolloutCreated) == [
            "release 2.0.0 (rollback): 1 clusters, 2 agents; max unavailable 3, max parallel clusters 2, canary clusters 0, "
                + "failure budget 10%, health timeout 90 s",
        ])
    }
}
