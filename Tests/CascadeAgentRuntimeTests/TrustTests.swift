import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Foundation
import Testing
@testable import CascadeAgentRuntime

/// What a member installs is decided by the coordinator and its own install floor, never by
/// its leader (services.md §3.3, §4.5).
@Suite("Agent runtime: expectations, install floor and downgrades")
struct TrustTests {
    static let later = UInt64(Date().timeIntervalSince1970) + 3600

    func authorisation(_ fleet: Fleet, from: String = "2.0.0", to: String = "1.1.0", expires: UInt64 = later,
                       key: Ed25519PrivateKey? = nil) throws -> SignedDowngrade {
        try SignedDowngrade.sign(
            DowngradeAuthorization(name: "cascade-agent", fromVersion: from, toVersion: to, expiresAt: expires), with: key ?? fleet.releaseKey)
    }

    /// A direct order for rollout `id` with the expectation the coordinator sends with it.
    func order(_ fleet: Fleet, _ id: UInt64, signed: SignedManifest? = nil, downgrade: SignedDowngrade? = nil) -> Instruction {
        let signed = signed ?? fleet.release.signed
        return Instruction(
            leaderEpoch: 1,
            upgrade: UpgradeOrder(rolloutID: id, releaseVersion: fleet.release.manifest.version, signedManifest: signed,
                                  fetch: FetchHint(rolloutID: id, source: .coordinator)),
            expectation: fleet.coordinator.expectation(id: id, signed: signed, downgrade: downgrade))
    }

    func outcome(_ fleet: Fleet, _ agent: String, rollout: UInt64) async throws -> AgentProgress {
        try await waitUntil(within: .seconds(20), "\(agent) to finish rollout \(rollout)") {
            let progress = fleet.runtime(agent).status.progress
            return progress?.rolloutID == rollout && (progress?.state.isTerminal ?? false) ? progress : nil
        }
    }

    @Test("A leader's order that arrives before the coordinator's expectation waits for it, then runs")
    func orderWaitsForExpectation() async throws {
        let fleet = try Fleet(subnet: "127.0.46", members: ["lead", "m1"], leader: "lead")
        try await fleet.startJoined(["lead", "m1"])
        fleet.coordinator.startRollout(policy: RolloutPolicy(), announce: false)
        // The leader instructs m1; m1 has not heard from the coordinator and does nothing.
        _ = try await waitUntil(within: .seconds(10), "the leader to instruct m1") {
            fleet.runtime("lead").status.leader?.memberStates["m1"] == .instructed ? true : nil
        }
        _ = try await waitUntil(within: .seconds(10), "m1 to park the order") {
            fleet.runtime("m1").core.value.parkedOrder?.0.rolloutID == 7 ? true : nil
        }
        #expect(fleet.runtime("m1").status.progress == nil)
        #expect(fleet.installs.installs(of: "m1").isEmpty)
        fleet.coordinator.expect(fleet.coordinator.expectation(id: 7))
        try await fleet.waitForState("m1", .healthy)
        try await fleet.waitForState("lead", .healthy)
        #expect(fleet.installs.installs(of: "m1").map(\.sha256) == [fleet.release.manifest.sha256])
        #expect(fleet.runtime("m1").status.ordersRefused == 0)
        await fleet.stopAll()
    }

    @Test("A downgrade installs only with a valid authorisation: none, expired, for other versions or by an unpinned key is refused")
    func downgradeNeedsAuthorisation() async throws {
        let fleet = try Fleet(subnet: "127.0.47", members: ["solo"], leader: "solo")
        let runtime = try fleet.start("solo", host: 1, version: "2.0.0")
        try await fleet.waitForSession("solo")
        #expect(runtime.status.installFloor == "2.0.0")
        let refusedCases: [(SignedDowngrade?, String)] = [
            (nil, "needs a downgrade authorisation"),
            (try authorisation(fleet, expires: 1_000), "expired"),
            (try authorisation(fleet, to: "1.0.0"), "allows installing 1.0.0, not 1.1.0"),
            (try authorisation(fleet, from: "1.9"), "allows leaving 1.9 or lower, not 2.0.0"),
            (try authorisation(fleet, key: try Ed25519PrivateKey.generate()), "not a pinned release key"),
        ]
        for (offset, (downgrade, why)) in refusedCases.enumerated() {
            let id = UInt64(20 + offset)
            fleet.coordinator.send(order(fleet, id, downgrade: downgrade), to: "solo")
            let progress = try await outcome(fleet, "solo", rollout: id)
            #expect(progress.state == .failed)
            #expect(progress.error.contains("downgrade-refused") && progress.error.contains(why), "\(progress.error)")
        }
        #expect(fleet.installs.installs(of: "solo").isEmpty)
        #expect(runtime.status.mainVersion == "2.0.0")

        fleet.coordinator.send(order(fleet, 30, downgrade: try authorisation(fleet)), to: "solo")
        #expect(try await outcome(fleet, "solo", rollout: 30).state == .healthy)
        #expect(fleet.installs.installs(of: "solo").map(\.version) == ["1.1.0"])
        // The authorised downgrade lowered the floor, durably.
        #expect(runtime.status.installFloor == "1.1.0")
        #expect(try String(contentsOfFile: fleet.root.file("solo") + "/install-floor", encoding: .utf8) == "1.1.0\n")
        await fleet.stopAll()
    }

    @Test("The install floor survives a restart: an agent that once ran 1.2.0 refuses 1.1.0 even while it runs 1.0.0")
    func floorSurvivesRestart() async throws {
        let fleet = try Fleet(subnet: "127.0.48", members: ["solo"], leader: "solo")
        try FileManager.default.createDirectory(atPath: fleet.root.file("solo"), withIntermediateDirectories: true)
        try "1.2.0\n".write(toFile: fleet.root.file("solo") + "/install-floor", atomically: true, encoding: .utf8)
        let runtime = try fleet.start("solo", host: 1, version: "1.0.0")
        try await fleet.waitForSession("solo")
        #expect(runtime.status.installFloor == "1.2.0")
        fleet.coordinator.send(order(fleet, 5), to: "solo")
        let progress = try await outcome(fleet, "solo", rollout: 5)
        #expect(progress.state == .failed)
        #expect(progress.error.contains("1.1.0 is lower than 1.2.0"), "\(progress.error)")
        #expect(fleet.installs.installs(of: "solo").isEmpty)
        await fleet.stopAll()
    }

    @Test("A release of another program is refused, even one the coordinator names")
    func otherProgramRefused() async throws {
        let fleet = try Fleet(subnet: "127.0.49", members: ["solo"], leader: "solo")
        try fleet.start("solo", host: 1)
        try await fleet.waitForSession("solo")
        var manifest = fleet.release.manifest
        manifest.name = "cascade-other"
        let other = try SignedManifest.sign(manifest, with: fleet.releaseKey)
        var instruction = order(fleet, 6, signed: other)
        instruction.expectation?.releaseName = "cascade-other"
        fleet.coordinator.send(instruction, to: "solo")
        let progress = try await outcome(fleet, "solo", rollout: 6)
        #expect(progress.state == .failed)
        #expect(progress.error.contains("wrong-program"), "\(progress.error)")
        #expect(fleet.installs.installs(of: "solo").isEmpty)
        await fleet.stopAll()
    }

    @Test("The leader upgrades itself only to what the coordinator named: without its own expectation, the second instruction installs nothing")
    func leaderNeedsExpectation() async throws {
        let fleet = try Fleet(subnet: "127.0.50", members: ["lead", "m1"], leader: "lead")
        try await fleet.startJoined(["lead", "m1"])
        fleet.coordinator.startRollout(policy: RolloutPolicy(), announce: false)
        // Only the member hears what rollout 7 installs.
        fleet.coordinator.send(Instruction(leaderEpoch: 1, expectation: fleet.coordinator.expectation(id: 7)), to: "m1")
        try await fleet.waitForState("m1", .healthy)
        _ = try await waitUntil(within: .seconds(20), "the second instruction") {
            fleet.runtime("lead").status.leader?.secondInstructionFrom == "m1" ? true : nil
        }
        try await fleet.waitForState("lead", .failed)
        #expect(fleet.runtime("lead").status.progress?.error.contains("has not said what rollout 7 installs") == true)
        #expect(fleet.installs.installs(of: "lead").isEmpty)
        #expect(fleet.installs.installs(of: "m1").count == 1)
        await fleet.stopAll()
    }

    @Test("The rollout's health timeout reaches the installer of every member and of the leader")
    func healthTimeoutReachesInstaller() async throws {
        let fleet = try Fleet(subnet: "127.0.55", members: ["lead", "m1"], leader: "lead")
        try await fleet.startJoined(["lead", "m1"])
        fleet.coordinator.startRollout(policy: RolloutPolicy(healthTimeoutSeconds: 45))
        try await fleet.waitForState("lead", .healthy)
        #expect(fleet.installs.installs(of: "m1").map(\.healthTimeout) == [.seconds(45)])
        #expect(fleet.installs.installs(of: "lead").map(\.healthTimeout) == [.seconds(45)])
        await fleet.stopAll()
    }
}
