import CascadeAPI
import CascadeCoordinator
import CascadeCrypto
import Foundation
import CascadeRPC
import CascadeTestSupport
import Testing

/// The fleet as these tests build it: agents named a<subnet>-<n> on 127.0.<subnet>.<n+10>,
/// registered in the order given (the first agent of a subnet leads it: leaders are stable).
func makeAgents(_ fixture: CoordinatorFixture, _ spec: [(id: String, cpu: Double)], version: String = "1.0") async throws -> [String: FakeAgent] {
    var agents: [String: FakeAgent] = [:]
    for (id, cpu) in spec {
        let subnet = id.dropFirst().prefix { $0 != "-" }
        let host = 10 + Int(id.split(separator: "-")[1])!
        let agent = try FakeAgent(fixture, id: id, address: "127.0.\(subnet).\(host)")
        _ = try await agent.register(version: version, cpu: cpu)
        try await agent.connect()
        agents[id] = agent
    }
    return agents
}

func rolloutStatus(_ fixture: CoordinatorFixture, _ id: UInt64) async throws -> RolloutStatus {
    try await fixture.operatorClient.unary(OperatorService.getRollout, RolloutQuery(rolloutID: id, includeAgents: true))
}

func waitForRollout(_ fixture: CoordinatorFixture, _ id: UInt64, _ state: RolloutState) async throws -> RolloutStatus {
    let deadline = ContinuousClock.now + .seconds(15)
    while true {
        let status = try await rolloutStatus(fixture, id)
        if status.state == state { return status }
        guard ContinuousClock.now < deadline else { throw TestFailure("rollout \(id) is \(status.state), not \(state): \(status.message)") }
        try await Task.sleep(for: .milliseconds(20))  // poll interval, bounded by the deadline above
    }
}

func waitForAgent(_ fixture: CoordinatorFixture, _ id: UInt64, _ agent: String, _ state: AgentRolloutState) async throws {
    let deadline = ContinuousClock.now + .seconds(15)
    while try await rolloutStatus(fixture, id).agents.first(where: { $0.agentID == agent })?.progress.state != state {
        guard ContinuousClock.now < deadline else { throw TestFailure("\(agent) never became \(state) in rollout \(id)") }
        try await Task.sleep(for: .milliseconds(20))  // poll interval, bounded by the deadline above
    }
}

/// Walks a member through the states an upgrading agent reports.
func upgrade(_ agent: FakeAgent, rollout: UInt64) {
    agent.report(.instructed, rollout: rollout)
    agent.report(.downloading, rollout: rollout, bytes: 150_000)
    agent.report(.installing, rollout: rollout, bytes: 300_000)
    agent.report(.healthy, rollout: rollout)
}

@Suite("Coordinator rollout engine")
struct RolloutFlowTests {
    @Test("clusters go one at a time: members through their leader, then the leader after the best upgraded member is cued")
    func fullRollout() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a1-03", 0.7), ("a2-02", 0.8), ("a2-01", 0.3)])
        defer { for agent in agents.values { agent.disconnect() } }
        let started = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(
            releaseVersion: "1.1", policy: RolloutPolicy(maxUnavailable: 1, maxParallelClusters: 1)))
        let id = started.rolloutID
        // A leader admits only members it knows: it hears of each one as it registers.
        _ = try await agents["a1-01"]!.instruction("its member list") { $0.assignment?.memberIDs == ["a1-02", "a1-03"] }
        #expect(agents["a1-02"]!.instructions.allSatisfy { $0.assignment?.memberIDs.isEmpty ?? true })

        let order = try await agents["a1-01"]!.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        #expect(order.clusterRollout?.members.map(\.agentID).sorted() == ["a1-01", "a1-02", "a1-03"])
        #expect(order.clusterRollout?.signedManifest != nil)
        // The coordinator's default weights, 0.6 and 0.4, reach the leader as 3 and 2.
        #expect(order.clusterRollout.map { [$0.cpuWeight, $0.memWeight] } == [3, 2])
        // With no failure budget the first failure in the cluster is the limit.
        #expect(order.clusterRollout?.failureLimit == 1)
        #expect(agents["a2-02"]!.instructions.allSatisfy { $0.clusterRollout == nil })

        upgrade(agents["a1-02"]!, rollout: id)
        upgrade(agents["a1-03"]!, rollout: id)
        // a1-03 has the higher idle weight of the two upgraded members: it is the sixth server.
        _ = try await agents["a1-03"]!.instruction("the second-instruction cue") { $0.secondInstructionCue?.rolloutID == id }
        #expect(agents["a1-02"]!.instructions.allSatisfy { $0.secondInstructionCue == nil })
        upgrade(agents["a1-01"]!, rollout: id)

        // Then the second cluster.
        _ = try await agents["a2-02"]!.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        upgrade(agents["a2-01"]!, rollout: id)
        _ = try await agents["a2-01"]!.instruction("the second-instruction cue") { $0.secondInstructionCue?.rolloutID == id }
        upgrade(agents["a2-02"]!, rollout: id)

        let done = try await waitForRollout(fixture, id, .succeeded)
        #expect(done.totals.healthy == 5)
        #expect(done.clusterProgress.map(\.phase) == [.succeeded, .succeeded])
        #expect(Set(done.agents.map(\.progress.state)) == [.healthy])
        let events = try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000, rolloutID: id))
        #expect(events.events.contains { $0.kind == "rollout.created" && $0.actor == "operator alice" })
        #expect(events.events.contains { $0.kind == "rollout.state" && $0.detail.contains("succeeded") })
        let all = try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000))
        #expect(all.events.filter { $0.kind == "rollout.second-instruction-cue" }.map(\.agentID) == ["a1-03", "a2-01"])
    }

    @Test("a leader that drops mid-rollout is replaced by the best live member, which gets the order with the next epoch")
    func failover() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a1-03", 0.7)])
        defer { for agent in agents.values { agent.disconnect() } }
        let id = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        let first = try await agents["a1-01"]!.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        upgrade(agents["a1-02"]!, rollout: id)
        try await waitForAgent(fixture, id, "a1-02", .healthy)

        agents["a1-01"]!.disconnect()
        let promoted = try await agents["a1-03"]!.instruction("its promotion") {
            $0.assignment?.role == .leader && $0.assignment?.leaderEpoch == first.leaderEpoch + 1
        }
        #expect(promoted.assignment?.leaderID == "a1-03")
        let told = try await agents["a1-02"]!.instruction("the new leader") { $0.assignment?.leaderID == "a1-03" }
        #expect(told.assignment?.leaderEpoch == first.leaderEpoch + 1)
        let order = try await agents["a1-03"]!.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        #expect(order.leaderEpoch == first.leaderEpoch + 1)
        // The acting leader continues from the database: a1-02 is already done.
        #expect(order.clusterRollout?.members.first { $0.agentID == "a1-02" }?.progress?.state == .healthy)
        let events = try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000))
        #expect(events.events.contains { $0.kind == "cluster.leader-changed" && $0.detail.contains("a1-03") })
    }

    @Test("a spent failure budget fails the rollout, the leader is told to abort and is never upgraded")
    func failureBudget() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a1-03", 0.7)])
        defer { for agent in agents.values { agent.disconnect() } }
        let id = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        _ = try await agents["a1-01"]!.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        agents["a1-02"]!.report(.instructed, rollout: id)
        agents["a1-02"]!.report(.installing, rollout: id)
        agents["a1-02"]!.report(.rolledBack, rollout: id, error: "the new main program did not report healthy within 60 s")
        let failed = try await waitForRollout(fixture, id, .failed)
        #expect(failed.message.contains("failure budget of 0% is spent: 1 of 3 agents failed"))
        _ = try await agents["a1-01"]!.instruction("the abort") { $0.control?.action == .abort && $0.control?.rolloutID == id }
        #expect(failed.agents.first { $0.agentID == "a1-01" }?.progress.state == .pending)
        #expect(agents.values.allSatisfy { agent in agent.instructions.allSatisfy { $0.secondInstructionCue == nil } })
    }

    @Test("a member rolled back within the failure budget ends the rollout partial, never succeeded, with the count in the reason")
    func partialWithinBudget() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a1-03", 0.7)])
        defer { for agent in agents.values { agent.disconnect() } }
        let id = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(
            releaseVersion: "1.1", policy: RolloutPolicy(failureBudgetPercent: 34))).rolloutID
        // One of three may fail (floor(3 × 34 / 100) = 1): the leader stops at the second.
        let order = try await agents["a1-01"]!.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        #expect(order.clusterRollout?.failureLimit == 2)
        agents["a1-02"]!.report(.instructed, rollout: id)
        agents["a1-02"]!.report(.installing, rollout: id)
        agents["a1-02"]!.report(.rolledBack, rollout: id, error: "the new main program did not report healthy within 120 s")
        upgrade(agents["a1-03"]!, rollout: id)
        _ = try await agents["a1-03"]!.instruction("the second-instruction cue") { $0.secondInstructionCue?.rolloutID == id }
        upgrade(agents["a1-01"]!, rollout: id)

        let done = try await waitForRollout(fixture, id, .partial)
        #expect(done.message == "succeeded with 1 rolled back and 0 failed of 3 agents (within the failure budget of 34%)")
        #expect(done.totals.healthy == 2 && done.totals.rolledBack == 1)
        #expect(done.clusterProgress.map(\.phase) == [.succeeded])
        let events = try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000, rolloutID: id))
        #expect(events.events.contains { $0.kind == "rollout.state" && $0.detail.contains("running → partial: succeeded with 1 rolled back") })
        #expect(!events.events.contains { $0.kind == "rollout.state" && $0.detail.contains("→ succeeded") })
    }

    @Test("a failure in one cluster lowers the other running clusters' failure limit, and their leaders hear it at once")
    func failureLimitFollowsOtherClusters() async throws {
        let fixture = try CoordinatorFixture(resend: .seconds(600))
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a1-03", 0.7), ("a2-01", 0.9), ("a2-02", 0.5), ("a2-03", 0.7)])
        defer { for agent in agents.values { agent.disconnect() } }
        // floor(6 × 34 / 100) = 2 may fail: each cluster alone may see 2, the third spends it.
        let id = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(
            releaseVersion: "1.1", policy: RolloutPolicy(maxParallelClusters: 2, failureBudgetPercent: 34))).rolloutID
        let first = try await agents["a1-01"]!.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        #expect(first.clusterRollout?.failureLimit == 3)
        _ = try await agents["a2-01"]!.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        agents["a2-02"]!.report(.instructed, rollout: id)
        agents["a2-02"]!.report(.rolledBack, rollout: id, error: "exited before reporting healthy")
        // Not at the next re-send (10 minutes away here): at once.
        let lowered = try await agents["a1-01"]!.instruction("the lowered limit") { $0.clusterRollout?.failureLimit == 2 }
        #expect(lowered.clusterRollout?.rolloutID == id)
    }

    @Test("a member that dies mid-install and never returns is failed at its installing deadline, counted against the budget, and the rollout ends")
    func memberDiesMidInstall() async throws {
        // Installing may last the health timeout (1 s) plus a 1 s margin here.
        let fixture = try CoordinatorFixture(installingMargin: .seconds(1))
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a1-03", 0.7)])
        defer { for agent in agents.values { agent.disconnect() } }
        let id = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(
            releaseVersion: "1.1", policy: RolloutPolicy(maxUnavailable: 2, failureBudgetPercent: 40, healthTimeoutSeconds: 1))).rolloutID
        _ = try await agents["a1-01"]!.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        agents["a1-02"]!.report(.instructed, rollout: id)
        agents["a1-02"]!.report(.installing, rollout: id)
        try await waitForAgent(fixture, id, "a1-02", .installing)
        agents["a1-02"]!.disconnect()  // its machine is gone for good
        upgrade(agents["a1-03"]!, rollout: id)
        _ = try await agents["a1-03"]!.instruction("the second-instruction cue") { $0.secondInstructionCue?.rolloutID == id }
        upgrade(agents["a1-01"]!, rollout: id)
        let done = try await waitForRollout(fixture, id, .partial)
        #expect(done.message == "succeeded with 0 rolled back and 1 failed of 3 agents (within the failure budget of 40%)")
        let lost = try #require(done.agents.first { $0.agentID == "a1-02" })
        #expect(lost.progress.state == .failed)
        #expect(lost.progress.error == "timed out: installing for longer than 2 s", "\(lost.progress.error)")
    }

    @Test("pause, resume and abort follow the state machine; illegal moves are FAILED_PRECONDITION")
    func transitions() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        defer { for agent in agents.values { agent.disconnect() } }
        let ops = fixture.operatorClient
        let id = try await ops.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        _ = try await waitForRollout(fixture, id, .running)
        #expect(try await ops.unary(OperatorService.pauseRollout, RolloutControlRequest(rolloutID: id)).state == .paused)
        _ = try await agents["a1-01"]!.instruction("the pause") { $0.control?.action == .pause }
        let again = await #expect(throws: RPCError.self) {
            _ = try await ops.unary(OperatorService.pauseRollout, RolloutControlRequest(rolloutID: id))
        }
        #expect(again?.code == .failedPrecondition)
        #expect(again?.message == "rollout \(id) is paused and cannot pause")
        #expect(try await ops.unary(OperatorService.resumeRollout, RolloutControlRequest(rolloutID: id)).state == .running)
        _ = try await agents["a1-01"]!.instruction("the resume") { $0.control?.action == .resume }
        #expect(try await ops.unary(OperatorService.abortRollout, RolloutControlRequest(rolloutID: id, reason: "test")).state == .aborted)
        _ = try await agents["a1-01"]!.instruction("the abort") { $0.control?.action == .abort }
        let late = await #expect(throws: RPCError.self) {
            _ = try await ops.unary(OperatorService.resumeRollout, RolloutControlRequest(rolloutID: id))
        }
        #expect(late?.code == .failedPrecondition)
        let missing = await #expect(throws: RPCError.self) {
            _ = try await ops.unary(OperatorService.pauseRollout, RolloutControlRequest(rolloutID: 99))
        }
        #expect(missing?.code == .notFound)
    }

    @Test("rolling out a lower version than the fleet runs needs a downgrade authorisation signed by a release key")
    func rollbackNeedsAuthorisation() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9)], version: "2.0")
        defer { for agent in agents.values { agent.disconnect() } }
        func start(_ request: StartRolloutRequest) async -> RPCError? {
            await #expect(throws: RPCError.self) { _ = try await fixture.operatorClient.unary(OperatorService.startRollout, request) }
        }
        let far = UInt64(Date().timeIntervalSince1970) + 3600
        func authorisation(from: String = "2.0", to: String = "1.1", expires: UInt64 = far, name: String = "cascade-agent",
                           key: Ed25519PrivateKey? = nil) throws -> SignedDowngrade {
            try SignedDowngrade.sign(DowngradeAuthorization(name: name, fromVersion: from, toVersion: to, expiresAt: expires), with: key ?? fixture.signingKey)
        }
        // The rollback flag alone is not enough any more.
        let flagOnly = await start(StartRolloutRequest(releaseVersion: "1.1", policy: RolloutPolicy(rollback: true)))
        #expect(flagOnly?.code == .failedPrecondition)
        #expect(flagOnly?.message.contains("downgrade authorisation") == true)
        // Expired, for other versions, for another program, or signed by a key nobody pinned.
        for (bad, why) in [
            (try authorisation(expires: 1000), "expired"), (try authorisation(to: "1.0"), "allows installing 1.0"),
            (try authorisation(from: "1.5"), "leaving 1.5 or lower"), (try authorisation(name: "other"), "is for \"other\""),
            (try authorisation(key: try Ed25519PrivateKey.generate()), "not a pinned release key"),
        ] {
            let refused = await start(StartRolloutRequest(releaseVersion: "1.1", downgrade: bad))
            #expect(refused?.code == .failedPrecondition)
            #expect(refused?.message.contains(why) == true, "\(refused?.message ?? "")")
        }
        // An authorisation for a rollout that does not go down is refused, not silently kept.
        let behind = try FakeAgent(fixture, id: "a3-01", address: "127.0.3.11")
        _ = try await behind.register(version: "1.0", cpu: 0.9)
        let notDown = await start(StartRolloutRequest(releaseVersion: "1.1", clusters: ["127.0.3.0/24"], downgrade: try authorisation()))
        #expect(notDown?.message.contains("this rollout does not go down; start it without --downgrade") == true, "\(notDown?.message ?? "")")
        // An agent of another cluster claiming a high version does not count against this scope
        // (the authorisation below leaves 2.0 at most, and would not cover its 99.0).
        let liar = try FakeAgent(fixture, id: "a2-01", address: "127.0.2.11")
        _ = try await liar.register(version: "99.0", cpu: 0.9)
        let valid = try authorisation()
        let status = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(
            releaseVersion: "1.1", clusters: ["127.0.1.0/24"], downgrade: valid))
        #expect(status.policy.rollback)
        let audited = try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events
            .filter { $0.kind == "rollout.downgrade-authorized" }
        #expect(audited.count == 1 && audited[0].detail.contains("signed by key \(fixture.signingKey.publicKey.keyID)"), "\(audited)")
        // A cluster of one: the coordinator orders its only agent directly, from the coordinator,
        // with what the rollout installs and the operator's authorisation.
        let order = try await agents["a1-01"]!.instruction("the direct order") { $0.upgrade?.rolloutID == status.rolloutID }
        #expect(order.upgrade?.fetch?.source == .coordinator)
        #expect(order.expectation?.releaseVersion == "1.1")
        #expect(order.expectation?.downgrade == valid)
        #expect(order.expectation?.manifestSHA256 == order.upgrade?.signedManifest?.manifestDigest)
    }
}

@Suite("The rollout record follows what agents run")
struct RecordTruthTests {
    func row(_ fixture: CoordinatorFixture, _ rollout: UInt64, _ agent: String) async throws -> AgentProgress? {
        try await rolloutStatus(fixture, rollout).agents.first { $0.agentID == agent }?.progress
    }

    @Test("a healthy report from an agent that says it runs another version is not recorded; one rolled back after it said healthy is corrected, with an event")
    func recordFollowsWhatAgentsRun() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        defer { for agent in agents.values { agent.disconnect() } }
        let rollout = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        let member = agents["a1-02"]!
        member.report(.instructed, rollout: rollout)
        // "Healthy on 1.1" while saying it runs 1.0: not recorded.
        member.send(AgentReport(
            heartbeat: Heartbeat(idle: IdleRatios(cpu: 0.5, memory: 0.5), mainVersion: "1.0", upgraderVersion: "1.0"),
            progress: AgentProgress(rolloutID: rollout, state: .healthy, releaseVersion: "1.1")))
        member.report(.downloading, rollout: rollout)
        try await waitForAgent(fixture, rollout, "a1-02", .downloading)
        // Healthy, saying it runs 1.1: recorded.
        member.send(AgentReport(
            heartbeat: Heartbeat(idle: IdleRatios(cpu: 0.5, memory: 0.5), mainVersion: "1.1", upgraderVersion: "1.1"),
            progress: AgentProgress(rolloutID: rollout, state: .healthy, releaseVersion: "1.1")))
        try await waitForAgent(fixture, rollout, "a1-02", .healthy)
        // Then its upgrader rolls it back (killed during the health check, repaired at restart):
        // its heartbeats say 1.0, and the record follows.
        member.heartbeat(cpu: 0.5, version: "1.0")
        try await waitForAgent(fixture, rollout, "a1-02", .rolledBack)
        #expect(try await row(fixture, rollout, "a1-02")?.error == "recorded healthy on 1.1, but it runs 1.0")
        let events = try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events
        #expect(events.contains { $0.kind == "rollout.record-corrected" && $0.detail.contains("agent a1-02: healthy → rolled-back") })
    }
}

extension RecordTruthTests {
    func bothPrograms(_ main: String, _ upgrader: String) -> Heartbeat {
        Heartbeat(idle: IdleRatios(cpu: 0.5, memory: 0.5), mainVersion: main, upgraderVersion: upgrader)
    }

    @Test("a rollout succeeds only once every healthy agent runs the release on both programs; one whose upgrader stays behind past the stall timeout is failed")
    func bothProgramsOnTheRelease() async throws {
        for upgraderFollows in [true, false] {
            let fixture = try CoordinatorFixture(stall: .seconds(2))
            try await fixture.push(try fixture.release("1.1"))
            let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
            let rollout = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
            _ = try await waitUntilAsync(within: .seconds(10), "the cluster to start") {
                try await rolloutStatus(fixture, rollout).clusterProgress.first?.phase == .members ? true : nil
            }
            let (leader, member) = (agents["a1-01"]!, agents["a1-02"]!)
            member.report(.instructed, rollout: rollout)
            // Its new main program is healthy; its upgrader has not followed yet.
            member.send(AgentReport(heartbeat: bothPrograms("1.1", "1.0"), progress: AgentProgress(rolloutID: rollout, state: .healthy, releaseVersion: "1.1")))
            try await waitForAgent(fixture, rollout, "a1-02", .healthy)
            leader.report(.installing, rollout: rollout)
            leader.report(.healthy, rollout: rollout)
            try await waitForAgent(fixture, rollout, "a1-01", .healthy)
            #expect(try await rolloutStatus(fixture, rollout).state == .running)
            if upgraderFollows {
                member.send(AgentReport(heartbeat: bothPrograms("1.1", "1.1")))
                let done = try await waitForRollout(fixture, rollout, .succeeded)
                #expect(done.totals.healthy == 2)
            } else {
                let done = try await waitForRollout(fixture, rollout, .failed)
                let row = try #require(done.agents.first { $0.agentID == "a1-02" }?.progress)
                #expect(row.state == .failed)
                #expect(row.error.contains("still runs main 1.1 and upgrader 1.0, not 1.1 on both"), "\(row.error)")
            }
            for agent in agents.values { agent.disconnect() }
            await fixture.shutdown()
        }
    }
}
