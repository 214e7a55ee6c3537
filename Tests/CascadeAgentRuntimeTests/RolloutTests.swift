import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Testing
@testable import CascadeAgentRuntime

@Suite("Agent runtime: coordinator session, leader and member roles")
struct RolloutTests {
    @Test("An agent registers, holds its session and sends heartbeats every report interval")
    func registerSessionHeartbeat() async throws {
        let fleet = try Fleet(subnet: "127.0.31", members: ["solo"], leader: "solo")
        let runtime = try fleet.start("solo", host: 1)
        try await fleet.waitForSession("solo")
        _ = try await waitUntil(within: .seconds(10), "three reports") {
            (fleet.coordinator.state.value.agents["solo"]?.reports ?? 0) >= 3 ? true : nil
        }
        let record = try #require(fleet.coordinator.state.value.agents["solo"])
        #expect(record.address == "127.0.31.1")
        #expect(record.port == UInt32(runtime.memberPort) && record.port != 0)
        #expect(record.idle == IdleRatios(cpuPPM: 500_000, memoryPPM: 500_000))
        let status = runtime.status
        #expect(status.agentID == "solo")
        #expect(status.role == .leader)
        #expect(status.epoch == 1)
        await fleet.stopAll()
    }

    @Test("The leader fetches the release once, serves three members, and upgrades last on the highest-weight member's second instruction")
    func fetchOnceServeThreeSecondInstruction() async throws {
        let members = ["m1", "m2", "m3"]
        let fleet = try Fleet(subnet: "127.0.32", members: ["lead"] + members, leader: "lead")
        try fleet.start("lead", host: 1)
        try await fleet.waitForSession("lead")
        for (n, id) in members.enumerated() {
            // m2 is the most idle: it must be the sixth server.
            let idle = id == "m2" ? IdleRatios(cpuPPM: 900_000, memoryPPM: 900_000) : IdleRatios(cpuPPM: 300_000, memoryPPM: 300_000)
            try fleet.start(id, host: 2 + n, idle: idle)
        }
        for id in members { try await fleet.waitForSession(id) }
        _ = try await waitUntil(within: .seconds(10), "members to join the leader") {
            fleet.runtime("lead").leader.value.sessions.count == 3 ? true : nil
        }
        fleet.coordinator.startRollout(policy: RolloutPolicy(maxUnavailable: 3))
        for id in members { try await fleet.waitForState(id, .healthy) }
        try await fleet.waitForState("lead", .healthy)

        let size = fleet.size
        #expect(fleet.coordinator.state.value.bytesServed == ["lead": size])
        for id in members {
            let status = fleet.runtime(id).status
            #expect(status.bytesFromLeader == size)
            #expect(status.bytesFromCoordinator == 0)
            #expect(status.mainVersion == "1.1.0")
            #expect(fleet.installs.installs(of: id).map(\.sha256) == [fleet.release.manifest.sha256])
        }
        let leader = fleet.runtime("lead").status
        #expect(leader.bytesServed == 3 * size)
        #expect(leader.leader?.secondInstructionFrom == "m2")
        // The leader may finish installing before m2 has read the reply.
        _ = try await waitUntil(within: .seconds(10), "m2 to count its second instruction") {
            fleet.runtime("m2").status.secondInstructionsSent == 1 ? true : nil
        }
        #expect(fleet.runtime("m1").status.secondInstructionsSent == 0)
        // Every download handed over was still marked in flight (so no prune could take it).
        #expect(fleet.installs.entries.value.allSatisfy { $0.markedInFlight })
        // The leader installs last, once.
        #expect(fleet.installs.installs(of: "lead").count == 1)
        #expect(fleet.installs.position(of: "lead") == 3)
        await fleet.stopAll()
    }

    @Test("The leader picks the sixth server with the idle weights the coordinator sent")
    func secondInstructionUsesCoordinatorWeights() async throws {
        let fleet = try Fleet(subnet: "127.0.52", members: ["lead", "cpu", "mem"], leader: "lead")
        try fleet.start("lead", host: 1)
        try await fleet.waitForSession("lead")
        // By the default weights (3 CPU, 2 memory) "cpu" ranks first (2.9M against 2.1M); by
        // the coordinator's 1 and 4, "mem" does (3.7M against 1.3M).
        try fleet.start("cpu", host: 2, idle: IdleRatios(cpuPPM: 900_000, memoryPPM: 100_000))
        try fleet.start("mem", host: 3, idle: IdleRatios(cpuPPM: 100_000, memoryPPM: 900_000))
        for id in ["cpu", "mem"] { try await fleet.waitForSession(id) }
        _ = try await waitUntil(within: .seconds(10), "members to join the leader") {
            fleet.runtime("lead").leader.value.sessions.count == 2 ? true : nil
        }
        fleet.coordinator.startRollout(policy: RolloutPolicy(maxUnavailable: 2), weights: IdleWeights(cpu: 1, memory: 4))
        try await fleet.waitForState("lead", .healthy)
        #expect(fleet.runtime("lead").status.leader?.secondInstructionFrom == "mem")
        await fleet.stopAll()
    }

    @Test("At most maxUnavailable members are in flight at once")
    func maxUnavailableRespected() async throws {
        let members = ["m1", "m2", "m3", "m4", "m5"]
        let fleet = try Fleet(subnet: "127.0.33", members: ["lead"] + members, leader: "lead", size: 8 * 16 * 1024)
        try fleet.start("lead", host: 1)
        try await fleet.waitForSession("lead")
        for (n, id) in members.enumerated() { try fleet.start(id, host: 2 + n) }
        _ = try await waitUntil(within: .seconds(10), "members to join the leader") {
            fleet.runtime("lead").leader.value.sessions.count == 5 ? true : nil
        }
        fleet.coordinator.startRollout(policy: RolloutPolicy(maxUnavailable: 2))
        for id in members { try await fleet.waitForState(id, .healthy) }
        #expect(fleet.tracker.peak <= 2)
        #expect(fleet.runtime("lead").status.leader?.peakInFlight == 2)
        #expect(fleet.installs.entries.value.filter { $0.agent != "lead" }.count == 5)
        await fleet.stopAll()
    }

    @Test("Pause stops new first instructions; resume continues them")
    func pauseAndResume() async throws {
        let members = ["m1", "m2", "m3"]
        let fleet = try Fleet(subnet: "127.0.35", members: ["lead"] + members, leader: "lead", size: 4 * 16 * 1024)
        try fleet.start("lead", host: 1)
        try await fleet.waitForSession("lead")
        try fleet.start("m1", host: 2, installerOpen: false)
        try fleet.start("m2", host: 3)
        try fleet.start("m3", host: 4)
        _ = try await waitUntil(within: .seconds(10), "members to join the leader") {
            fleet.runtime("lead").leader.value.sessions.count == 3 ? true : nil
        }
        fleet.coordinator.startRollout(id: 11, policy: RolloutPolicy(maxUnavailable: 1))
        try await fleet.waitForState("m1", .installing)
        fleet.coordinator.send(Instruction(leaderEpoch: 1, control: RolloutControl(rolloutID: 11, action: .pause, reason: "test")), to: "lead")
        _ = try await waitUntil(within: .seconds(10), "the leader to pause") {
            fleet.runtime("lead").status.leader?.paused == true ? true : nil
        }
        fleet.installer("m1").setOpen(true)
        _ = try await waitUntil(within: .seconds(10), "the leader to see m1 healthy") {
            fleet.runtime("lead").status.leader?.memberStates["m1"] == .healthy ? true : nil
        }
        let paused = try #require(fleet.runtime("lead").status.leader)
        #expect(paused.memberStates["m2"] == .pending && paused.memberStates["m3"] == .pending)
        fleet.coordinator.send(Instruction(leaderEpoch: 1, control: RolloutControl(rolloutID: 11, action: .resume)), to: "lead")
        for id in members { try await fleet.waitForState(id, .healthy) }
        try await fleet.waitForState("lead", .healthy)
        await fleet.stopAll()
    }

    @Test("A member streams chunks from the leader before the leader has them all")
    func memberStreamsWhileLeaderReceives() async throws {
        let fleet = try Fleet(subnet: "127.0.34", members: ["lead", "m1"], leader: "lead")
        fleet.coordinator.hold(from: 20)
        try fleet.start("lead", host: 1)
        try fleet.start("m1", host: 2)
        try await fleet.waitForSession("lead")
        _ = try await waitUntil(within: .seconds(10), "m1 to join") {
            fleet.runtime("lead").leader.value.sessions.count == 1 ? true : nil
        }
        fleet.coordinator.startRollout(policy: RolloutPolicy(maxUnavailable: 1))
        _ = try await waitUntil(within: .seconds(20), "m1 to receive the 20 chunks the leader has") {
            fleet.runtime("m1").status.bytesFromLeader == 20 * fleet.chunkSize ? true : nil
        }
        let leader = try #require(fleet.runtime("lead").status.leader)
        #expect(leader.stagedChunks == 20 && leader.chunkCount == 40)
        fleet.coordinator.hold(from: nil)
        try await fleet.waitForState("m1", .healthy)
        #expect(fleet.runtime("m1").status.bytesFromLeader == fleet.size)
        #expect(fleet.coordinator.state.value.bytesServed == ["lead": fleet.size])
        await fleet.stopAll()
    }

    @Test("A member the coordinator ended (its deadline passed) frees its slot: the next member starts")
    func timedOutMemberFreesItsSlot() async throws {
        let fleet = try Fleet(subnet: "127.0.56", members: ["lead", "m1", "m2"], leader: "lead")
        let leader = try fleet.start("lead", host: 1)
        try fleet.start("m1", host: 2, installerOpen: false)
        try fleet.start("m2", host: 3)
        for id in ["lead", "m1", "m2"] { try await fleet.waitForSession(id) }
        _ = try await waitUntil(within: .seconds(10), "both members to join") { leader.leader.value.sessions.count == 2 ? true : nil }
        fleet.coordinator.startRollout(policy: RolloutPolicy(maxUnavailable: 1))
        // m1 goes first (id order) and hangs in its install: m2 waits for the slot.
        try await fleet.waitForState("m1", .installing)
        #expect(leader.status.leader?.memberStates["m2"] == .pending)
        // The coordinator's deadline for installing passes: it records m1 failed and says so.
        fleet.coordinator.startRollout(policy: RolloutPolicy(maxUnavailable: 1), recorded: [
            "m1": AgentProgress(rolloutID: 7, state: .failed, releaseVersion: "1.1.0", error: "installing timed out"),
        ])
        try await fleet.waitForState("m2", .healthy)
        #expect(fleet.installs.installs(of: "m2").count == 1)
        fleet.installer("m1").setOpen(true)
        await fleet.stopAll()
    }
}
