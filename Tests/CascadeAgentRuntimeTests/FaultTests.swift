import CascadeAPI
import Foundation
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Testing
@testable import CascadeAgentRuntime

@Suite("Agent runtime: faults")
struct FaultTests {
    @Test("A corrupted chunk from the leader is discarded, reported, and fetched from the coordinator")
    func corruptChunkFromLeader() async throws {
        let fleet = try Fleet(subnet: "127.0.41", members: ["lead", "m1"], leader: "lead")
        try fleet.start("lead", host: 1, faults: .init(corruptServedChunks: [7]))
        try fleet.start("m1", host: 2)
        try await fleet.waitForSession("lead")
        _ = try await waitUntil(within: .seconds(10), "m1 to join") {
            fleet.runtime("lead").leader.value.sessions.count == 1 ? true : nil
        }
        fleet.coordinator.startRollout(policy: RolloutPolicy())
        try await fleet.waitForState("m1", .healthy)
        let faults = fleet.coordinator.state.value.faults
        #expect(faults.count == 1)
        #expect(faults.first?.sourceID == "lead")
        #expect(faults.first?.chunkIndex == 7)
        let status = fleet.runtime("m1").status
        #expect(status.faultsReported == 1)
        #expect(status.bytesFromLeader == 7 * fleet.chunkSize)
        #expect(status.bytesFromCoordinator == fleet.size - 7 * fleet.chunkSize)
        #expect(fleet.installs.installs(of: "m1").map(\.sha256) == [fleet.release.manifest.sha256])
        await fleet.stopAll()
    }

    @Test("A member interrupted mid-download resumes from its last verified chunk")
    func resumeAfterInterruption() async throws {
        let fleet = try Fleet(subnet: "127.0.42", members: ["solo"], leader: "solo")
        fleet.coordinator.hold(from: 25)
        try fleet.start("solo", host: 1)
        try await fleet.waitForSession("solo")
        let order = UpgradeOrder(
            rolloutID: 9, releaseVersion: "1.1.0", signedManifest: fleet.release.signed,
            fetch: FetchHint(rolloutID: 9, source: .coordinator))
        fleet.coordinator.send(Instruction(leaderEpoch: 1, upgrade: order), to: "solo")
        _ = try await waitUntil(within: .seconds(20), "25 chunks staged") {
            fleet.runtime("solo").status.bytesFromCoordinator == 25 * fleet.chunkSize ? true : nil
        }
        try await fleet.stop("solo")
        fleet.coordinator.hold(from: nil)

        // The same agent starts again (a new process) with its state directory.
        let again = try fleet.start("solo", host: 1)
        try await fleet.waitForSession("solo")
        fleet.coordinator.send(Instruction(leaderEpoch: 1, upgrade: order), to: "solo")
        try await fleet.waitForState("solo", .healthy)
        #expect(again.status.bytesFromCoordinator == fleet.size - 25 * fleet.chunkSize)
        #expect(fleet.installs.installs(of: "solo").map(\.sha256) == [fleet.release.manifest.sha256])
        await fleet.stopAll()
    }

    @Test("An instruction with a stale epoch is refused; the same one under the current epoch is obeyed")
    func staleEpochRefused() async throws {
        let fleet = try Fleet(subnet: "127.0.43", members: ["solo"], leader: "solo")
        fleet.coordinator.state.withLock { $0.epoch = 5 }
        let runtime = try fleet.start("solo", host: 1)
        try await fleet.waitForSession("solo")
        let order = UpgradeOrder(
            rolloutID: 3, releaseVersion: "1.1.0", signedManifest: fleet.release.signed,
            fetch: FetchHint(rolloutID: 3, source: .coordinator))
        fleet.coordinator.send(Instruction(leaderEpoch: 4, upgrade: order), to: "solo")
        fleet.coordinator.send(Instruction(leaderEpoch: 4, assignment: Assignment(agentID: "solo", role: .member, leaderID: "x", leaderEpoch: 4)), to: "solo")
        _ = try await waitUntil(within: .seconds(10), "two refusals") { runtime.status.refusals == 2 ? true : nil }
        #expect(runtime.status.progress == nil)
        #expect(runtime.status.role == .leader)
        fleet.coordinator.send(Instruction(leaderEpoch: 5, upgrade: order), to: "solo")
        try await fleet.waitForState("solo", .healthy)
        #expect(fleet.installs.installs(of: "solo").count == 1)
        await fleet.stopAll()
    }

    @Test("A leader refuses a member of another epoch, a non-member, and an early second instruction")
    func leaderAuthorization() async throws {
        let fleet = try Fleet(subnet: "127.0.44", members: ["lead", "m1"], leader: "lead")
        fleet.coordinator.state.withLock { $0.epoch = 3 }
        let leader = try fleet.start("lead", host: 1)
        try await fleet.waitForSession("lead")
        let target = try SocketAddress(ip: "127.0.44.1", port: leader.memberPort)
        func client(_ id: String) throws -> RPCClient {
            RPCClient(target: target, tls: try TLSContext(configuration: fleet.pki.configuration(uri: "cascade://agent/\(id)", name: "\(id)-direct"), side: .client))
        }
        let member = try client("m1"), stranger = try client("zz")
        defer { member.close(); stranger.close() }
        func code(_ body: () async throws -> Void) async -> RPCCode? {
            do { try await body(); return nil } catch let error as RPCError { return error.code } catch { return .unknown }
        }
        let request = UpgradeLeaderRequest(rolloutID: 1, leaderEpoch: 2, senderID: "m1", releaseVersion: "1.1.0")
        #expect(await code { _ = try await member.unary(LeaderService.upgradeLeader, request) } == .failedPrecondition)
        var current = request
        current.leaderEpoch = 3
        #expect(await code { _ = try await stranger.unary(LeaderService.upgradeLeader, current) } == .permissionDenied)
        // No rollout yet: nothing to upgrade to.
        #expect(await code { _ = try await member.unary(LeaderService.upgradeLeader, current) } == .notFound)
        await fleet.stopAll()
    }

    @Test("A leader's FetchChunks follows services.md §3.1: a digest alone names the release, first_index = count is OUT_OF_RANGE, neither name is INVALID_ARGUMENT")
    func leaderFetchChunksContract() async throws {
        let fleet = try Fleet(subnet: "127.0.46", members: ["lead", "m1"], leader: "lead")
        fleet.coordinator.state.withLock { $0.epoch = 3 }
        let leader = try fleet.start("lead", host: 1)
        try await fleet.waitForSession("lead")
        fleet.coordinator.startRollout(id: 11, policy: RolloutPolicy(maxUnavailable: 1))
        let manifest = fleet.coordinator.release.manifest
        _ = try await waitUntil(within: .seconds(20), "the leader to stage the release") {
            fleet.runtime("lead").status.leader?.stagedChunks == manifest.chunkCount ? true : nil
        }
        let member = RPCClient(
            target: try SocketAddress(ip: "127.0.46.1", port: leader.memberPort),
            tls: try TLSContext(configuration: fleet.pki.configuration(uri: "cascade://agent/m1", name: "m1-direct"), side: .client))
        defer { member.close() }
        let connection = try await member.connection()
        func fetch(_ request: FetchChunksRequest) async throws -> [UInt32] {
            var indexes: [UInt32] = []
            try await connection.serverStreaming(LeaderService.fetchChunks, request, options: .epoch(3)) { chunks in
                for try await chunk in chunks { indexes.append(chunk.index) }
            }
            return indexes
        }
        func code(_ request: FetchChunksRequest) async -> RPCCode? {
            do { _ = try await fetch(request); return nil } catch let error as RPCError { return error.code } catch { return .unknown }
        }
        let count = UInt32(manifest.chunkCount)
        #expect(try await fetch(FetchChunksRequest(artifactSHA256: manifest.sha256)) == Array(0..<count))
        #expect(try await fetch(FetchChunksRequest(version: manifest.version, firstIndex: count - 1)) == [count - 1])
        #expect(await code(FetchChunksRequest(version: manifest.version, firstIndex: count)) == .outOfRange)
        #expect(await code(FetchChunksRequest()) == .invalidArgument)
        await fleet.stopAll()
    }

    @Test("A release signed by an unpinned key is never forwarded nor installed")
    func unpinnedKeyRefused() async throws {
        let fleet = try Fleet(subnet: "127.0.45", members: ["lead", "m1"], leader: "lead")
        try fleet.start("lead", host: 1)
        try fleet.start("m1", host: 2)
        try await fleet.waitForSession("lead")
        try await fleet.waitForSession("m1")
        let rogue = try Ed25519PrivateKey.generate()
        let forged = try SignedManifest.sign(fleet.release.manifest, with: rogue)
        fleet.coordinator.startRollout(policy: RolloutPolicy(), signed: forged)
        let order = UpgradeOrder(rolloutID: 8, releaseVersion: "1.1.0", signedManifest: forged, fetch: FetchHint(rolloutID: 8, source: .coordinator))
        fleet.coordinator.send(Instruction(leaderEpoch: 1, upgrade: order), to: "m1")
        try await fleet.waitForState("lead", .failed)
        try await fleet.waitForState("m1", .failed)
        #expect(fleet.runtime("lead").status.progress?.error.contains("not a pinned release key") == true)
        #expect(fleet.runtime("m1").status.refusals >= 1)
        #expect(fleet.runtime("lead").status.leader == nil)
        #expect(fleet.installs.entries.value.isEmpty)
        #expect(fleet.coordinator.state.value.bytesServed.isEmpty)
        await fleet.stopAll()
    }

    @Test("A source that keeps failing is given up on: the leader after a bounded number of attempts, reporting it; its member falls back and fails with the reason")
    func boundedRetries() async throws {
        let fleet = try Fleet(subnet: "127.0.51", members: ["lead", "m1"], leader: "lead")
        fleet.coordinator.state.withLock { $0.failFetches = true }
        try await fleet.startJoined(["lead", "m1"])
        fleet.coordinator.startRollout(policy: RolloutPolicy())
        let report = try await waitUntil(within: .seconds(20), "the leader to report its failing source") {
            fleet.coordinator.state.value.faults.first { $0.sourceID.isEmpty && $0.releaseVersion == "1.1.0" }
        }
        #expect(report.detail.contains("failed its check where it rests"))
        #expect(fleet.coordinator.state.value.fetchCalls["lead"] == AgentRuntime.fetchAttemptsWithoutProgress)
        try await fleet.waitForState("m1", .failed, within: .seconds(30))
        let error = fleet.runtime("m1").status.progress?.error ?? ""
        #expect(error.contains("gave up fetching 1.1.0 after 12 attempts"), "\(error)")
        // The leader stopped for good: no attempt since it reported.
        #expect(fleet.coordinator.state.value.fetchCalls["lead"] == AgentRuntime.fetchAttemptsWithoutProgress)
        #expect(fleet.installs.installs(of: "m1").isEmpty)
        await fleet.stopAll()
    }

    @Test("An abort stops the leader's fetch from the coordinator")
    func abortStopsFetch() async throws {
        let fleet = try Fleet(subnet: "127.0.52", members: ["lead", "m1"], leader: "lead")
        fleet.coordinator.hold(from: 5)
        try fleet.start("lead", host: 1)
        try fleet.start("m1", host: 2)
        try await fleet.waitForSession("lead")
        fleet.coordinator.startRollout(policy: RolloutPolicy())
        _ = try await waitUntil(within: .seconds(20), "the leader to fetch 5 chunks and wait") {
            fleet.coordinator.state.value.bytesServed["lead"] == 5 * fleet.chunkSize && fleet.coordinator.state.value.activeFetches > 0 ? true : nil
        }
        fleet.coordinator.send(Instruction(leaderEpoch: 1, control: RolloutControl(rolloutID: 7, action: .abort, reason: "test")), to: "lead")
        _ = try await waitUntil(within: .seconds(10), "every fetch to end") { fleet.coordinator.state.value.activeFetches == 0 ? true : nil }
        let calls = fleet.coordinator.state.value.fetchCalls["lead"]
        fleet.coordinator.hold(from: nil)
        #expect(fleet.runtime("lead").status.leader?.aborted == true)
        #expect(fleet.coordinator.state.value.fetchCalls["lead"] == calls)
        await fleet.stopAll()
    }

    @Test("A paused or aborted rollout starts no install on the leader: its second instruction is refused until resumed, and for good after an abort")
    func stopMeansStopForTheLeader() async throws {
        for action in [RolloutAction.pause, .abort] {
            let fleet = try Fleet(subnet: action == .pause ? "127.0.53" : "127.0.54", members: ["lead", "m1"], leader: "lead")
            let leader = try fleet.start("lead", host: 1)
            try await fleet.waitForSession("lead")
            // m1 is done (as the coordinator recorded it) but holds no Join: nobody is cued.
            fleet.coordinator.state.withLock {
                $0.agents["m1"] = FakeCoordinator.AgentRecord(progress: AgentProgress(rolloutID: 7, state: .healthy, releaseVersion: "1.1.0"))
            }
            fleet.coordinator.startRollout(policy: RolloutPolicy())
            _ = try await waitUntil(within: .seconds(10), "the leader to run rollout 7") { leader.status.leader?.rolloutID == 7 ? true : nil }
            fleet.coordinator.send(Instruction(leaderEpoch: 1, control: RolloutControl(rolloutID: 7, action: action, reason: "test")), to: "lead")
            _ = try await waitUntil(within: .seconds(10), "the leader to apply \(action)") {
                (action == .pause ? leader.status.leader?.paused : leader.status.leader?.aborted) == true ? true : nil
            }
            let member = RPCClient(
                target: try SocketAddress(ip: "\(fleet.subnet).1", port: leader.memberPort),
                tls: try TLSContext(configuration: fleet.pki.configuration(uri: "cascade://agent/m1", name: "m1-direct"), side: .client))
            defer { member.close() }
            let request = UpgradeLeaderRequest(rolloutID: 7, leaderEpoch: 1, senderID: "m1", releaseVersion: "1.1.0")
            do {
                _ = try await member.unary(LeaderService.upgradeLeader, request)
                Issue.record("the second instruction was accepted after \(action)")
            } catch let error as RPCError {
                #expect(error.code == .failedPrecondition)
                #expect(error.message.contains(action == .pause ? "is paused" : "is aborted"), "\(error.message)")
            }
            #expect(fleet.installs.installs(of: "lead").isEmpty)
            if action == .pause {
                fleet.coordinator.send(Instruction(leaderEpoch: 1, control: RolloutControl(rolloutID: 7, action: .resume)), to: "lead")
                _ = try await waitUntil(within: .seconds(10), "the leader to resume") { leader.status.leader?.paused == false ? true : nil }
                let answer = try await member.unary(LeaderService.upgradeLeader, request)
                #expect(!answer.alreadyUpgrading)
                try await fleet.waitForState("lead", .healthy)
            }
            await fleet.stopAll()
        }
    }

    @Test("A member whose staging disk is too small fails its attempt at once, with the sizes; the others finish")
    func stagingDiskFull() async throws {
        guard getuid() == 0 else {
            print("skipped: mounting a small tmpfs needs root (CI runs as root)")
            return
        }
        let fleet = try Fleet(subnet: "127.0.57", members: ["lead", "m1", "m2"], leader: "lead")
        let small = fleet.root.file("m1")
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        try run("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", small])
        defer { try? run("/bin/umount", ["-l", small]) }
        try await fleet.startJoined(["lead", "m1", "m2"])
        fleet.coordinator.startRollout(policy: RolloutPolicy(maxUnavailable: 2))
        try await fleet.waitForState("m1", .failed)
        let error = fleet.runtime("m1").status.progress?.error ?? ""
        #expect(error.contains("no-space: no space for release 1.1.0") && error.contains("\(fleet.size) more bytes needed"), "\(error)")
        try await fleet.waitForState("m2", .healthy)
        #expect(fleet.installs.installs(of: "m1").isEmpty)
        // It failed without pulling the release over and over.
        #expect(fleet.runtime("m1").status.bytesFromLeader + fleet.runtime("m1").status.bytesFromCoordinator == 0)
        await fleet.stopAll()
    }

    private func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("\(tool) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)") }
    }
}
