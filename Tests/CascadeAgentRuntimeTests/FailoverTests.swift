import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Testing
@testable import CascadeAgentRuntime

@Suite("Agent runtime: failover")
struct FailoverTests {
    @Test("When the leader stops, the acting leader continues the rollout: nobody upgraded twice, nobody skipped, and the old leader rejoins as a member")
    func leaderFailover() async throws {
        let fleet = try Fleet(subnet: "127.0.51", members: ["lead", "m1", "m2", "m3"], leader: "lead")
        fleet.coordinator.state.withLock { $0.autoFailover = true }
        try fleet.start("lead", host: 1)
        try await fleet.waitForSession("lead")
        try fleet.start("m1", host: 2)
        try fleet.start("m2", host: 3, installerOpen: false)
        // m3 is the most idle: it becomes the acting leader (the fifth server).
        try fleet.start("m3", host: 4, idle: IdleRatios(cpuPPM: 950_000, memoryPPM: 950_000))
        _ = try await waitUntil(within: .seconds(10), "members to join the leader") {
            fleet.runtime("lead").leader.value.sessions.count == 3 ? true : nil
        }
        fleet.coordinator.startRollout(policy: RolloutPolicy(maxUnavailable: 1))
        try await fleet.waitForState("m1", .healthy)
        try await fleet.waitForState("m2", .installing)
        _ = try await waitUntil(within: .seconds(10), "the coordinator to hear m2 is installing") {
            fleet.coordinator.state.value.agents["m2"]?.progress?.state == .installing ? true : nil
        }

        try await fleet.stop("lead")
        _ = try await waitUntil(within: .seconds(10), "m3 to lead under epoch 2") {
            let status = fleet.runtime("m3").status
            return status.role == .leader && status.epoch == 2 ? true : nil
        }
        fleet.installer("m2").setOpen(true)
        try await fleet.waitForState("m2", .healthy)

        // The old leader comes back, registers, and is a member of m3's cluster.
        let old = try fleet.start("lead", host: 1)
        try await fleet.waitForState("lead", .healthy, within: .seconds(30))
        try await fleet.waitForState("m3", .healthy, within: .seconds(30))
        #expect(old.status.role == .member)
        #expect(old.status.leaderID == "m3")
        for id in ["lead", "m1", "m2", "m3"] {
            #expect(fleet.installs.installs(of: id).count == 1, "\(id) installed once")
            #expect(fleet.runtime(id).status.mainVersion == "1.1.0")
        }
        // The acting leader upgraded last.
        #expect(fleet.installs.position(of: "m3") == 3)
        await fleet.stopAll()
    }
}
