import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Foundation
import Testing

/// The end-to-end fault suite (DESIGN.md §6): the real coordinator binary and real agent pairs
/// on loopback (127.0.1.x and 127.0.2.x are two /24 clusters), a signed padded release of the
/// built binaries, and one fault per test. Each asserts the end state — versions on disk,
/// database rows read back over RPC, files — not just "no crash".
@Suite("Fleet faults", .serialized)
struct FaultTests {
    /// Versions of every agent, for failure messages.
    static func versions(_ nodes: [FleetNode]) -> String {
        nodes.map { "\($0.id): main \($0.version("main") ?? "-") upgrader \($0.version("upgrader") ?? "-")" }.joined(separator: ", ")
    }

    @Test("a release whose main program never gets healthy: rolled back on every member that tried it, the rollout fails at its budget, the leader stays on 1.0")
    func failedHealthCheck() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let subnets = try await fleet.makeAgents(subnets: [1, 2], perSubnet: 3, healthDeadline: 6)
        let (first, second) = (subnets[0], subnets[1])
        try await fleet.push(bundles.neverHealthy, version: "1.1")
        // Two members at once; one cluster at a time; 6 agents, so a budget of 20% is spent at
        // the second failure (2 × 100 > 20 × 6).
        let id = try await fleet.startRollout("1.1", RolloutPolicy(
            maxUnavailable: 2, maxParallelClusters: 1, failureBudgetPercent: 20, healthTimeoutSeconds: 30))
        let status = try await fleet.waitRollout(id, "failed") { $0.state == .failed }
        #expect(status.message.contains("failure budget of 20% is spent"))

        // Both members of the cluster that ran tried 1.1 and were rolled back to 1.0.
        let ran = try #require([first, second].first { nodes in
            status.agents.contains { row in nodes.contains { $0.id == row.agentID } && row.progress.state == .rolledBack }
        })
        let idle = ran[0].id.hasPrefix("a1") ? second : first
        let leader = ran[0]
        for member in ran.dropFirst() {
            let row = try #require(status.agents.first { $0.agentID == member.id })
            #expect(row.progress.state == .rolledBack, "\(member.id): \(row.progress)")
            #expect(!row.progress.error.isEmpty)
            let transitions = try await fleet.transitions(member.id, rollout: id)
            #expect(transitions.contains { $0.hasPrefix("installing → rolled-back") || $0.hasPrefix("downloading → rolled-back") }, "\(transitions)")
        }
        // Every one of them is back on 1.0, on disk and running, and remembers 1.1 as failed.
        _ = try await fleet.wait("every agent back on 1.0: \(Self.versions(fleet.agents))") {
            fleet.agents.allSatisfy { $0.settled(on: "1.0") } ? true : nil
        }
        for member in ran.dropFirst() {
            // It tried 1.1 (the failure record says so); the rolled-back release is not kept.
            #expect(member.releases("main") == ["1.0"], "\(member.id): \(member.releases("main"))")
            let failures = try String(contentsOfFile: "\(member.root)/state/failed-main.json", encoding: .utf8)
            #expect(failures.contains("1.1"), "\(member.id): \(failures)")
        }
        // The leader was never upgraded: no instruction, no 1.1 on disk.
        let leaderRow = try #require(status.agents.first { $0.agentID == leader.id })
        #expect(leaderRow.progress.state == .pending)
        #expect(try await fleet.transitions(leader.id, rollout: id).isEmpty)
        #expect(!leader.releases("main").contains("1.1"))
        // The rollout stopped: the other cluster never started.
        for node in idle {
            #expect(status.agents.first { $0.agentID == node.id }?.progress.state == .pending)
            #expect(try await fleet.transitions(node.id, rollout: id).isEmpty)
        }
        #expect(status.clusterProgress.map(\.phase).contains(.aborted) || status.clusterProgress.contains { $0.phase == .failed })
        // Stop means stop: once the rollout failed, no agent was instructed or began installing.
        let events = try await fleet.events().filter { $0.rolloutID == id }
        let failedAt = try #require(events.first { $0.kind == "rollout.state" && $0.detail.contains("→ failed") }).id
        let later = events.filter { $0.id > failedAt && $0.kind == "rollout.agent-state" && ($0.detail.hasSuffix("→ instructed") || $0.detail.hasSuffix("→ installing")) }
        #expect(later.isEmpty, "\(later.map(\.detail))")
    }
}

/// Where a rollout agent state stands in the forward order (terminal states last).
func rank(_ state: AgentRolloutState) -> Int {
    switch state {
    case .pending: 0
    case .instructed: 1
    case .downloading: 2
    case .installing: 3
    case .healthy, .failed, .rolledBack: 4
    default: -1
    }
}

extension FaultTests {
    /// Each agent went through installing and healthy exactly once in the rollout.
    static func expectUpgradedOnce(_ fleet: Fleet, _ nodes: [FleetNode], rollout id: UInt64) async throws {
        for node in nodes {
            let transitions = try await fleet.transitions(node.id, rollout: id)
            #expect(transitions.filter { $0.hasSuffix("→ installing") }.count == 1, "\(node.id): \(transitions)")
            #expect(transitions.filter { $0.hasSuffix("→ healthy") }.count == 1, "\(node.id): \(transitions)")
            #expect(!transitions.contains { $0.contains("failed") || $0.contains("rolled-back") }, "\(node.id): \(transitions)")
        }
    }

    @Test("kill -9 the coordinator mid-rollout: restarted on the same data and port, every acknowledged row is there and the rollout succeeds")
    func coordinatorKilled() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let subnets = try await fleet.makeAgents(perSubnet: 2)
        let nodes = subnets.flatMap { $0 }
        try await fleet.push(bundles.good, version: "1.1")
        let id = try await fleet.startRollout("1.1", RolloutPolicy(maxUnavailable: 1, maxParallelClusters: 2, healthTimeoutSeconds: 30))
        let before = try await fleet.waitRollout(id, "a member at work") { status in
            status.agents.contains { rank($0.progress.state) >= 2 } && status.totals.healthy < 2
        }
        let eventsBefore = try await fleet.events()

        try await fleet.killCoordinatorAndWait()
        try await fleet.startCoordinator()
        let after = try await fleet.wait("the restarted coordinator to answer") { try await fleet.rollout(id) }
        // Nothing acknowledged is lost: the rollout as it was, every agent's row as far along
        // as before (or further: reports committed between the read and the kill), every event.
        #expect(after.state == .running)
        #expect(after.releaseVersion == before.releaseVersion && after.policy == before.policy)
        #expect(after.createdAtMs == before.createdAtMs && after.startedAtMs == before.startedAtMs)
        #expect(after.agents.count == before.agents.count)
        for row in before.agents {
            let now = try #require(after.agents.first { $0.agentID == row.agentID })
            #expect(rank(now.progress.state) >= rank(row.progress.state), "\(row.agentID): \(row.progress.state) → \(now.progress.state)")
        }
        let eventsAfter = try await fleet.events()
        #expect(Array(eventsAfter.prefix(eventsBefore.count)) == eventsBefore)

        // The agents reconnect by themselves and the rollout continues where it stopped.
        let done = try await fleet.waitRollout(id, "succeeded") { $0.state.isTerminal }
        #expect(done.state == .succeeded, "\(done.message)")
        #expect(done.totals.healthy == 4)
        _ = try await fleet.wait("every agent on 1.1: \(Self.versions(nodes))") { nodes.allSatisfy { $0.settled(on: "1.1") } ? true : nil }
        try await Self.expectUpgradedOnce(fleet, nodes, rollout: id)
    }

    @Test("kill -9 a leader mid-download: the acting leader takes over with epoch + 1, everyone ends on 1.1 once, the old leader rejoins as a member")
    func leaderKilled() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let total = try Bundles.chunkCount(bundles.good)
        let subnets = try await fleet.makeAgents(perSubnet: 3)
        let nodes = subnets.flatMap { $0 }
        let cluster = "127.0.1.0/24"
        let (oldLeader, acting, other) = (subnets[0][0], subnets[0][1], subnets[0][2])
        let epoch = try #require(try await fleet.cluster(cluster)).leaderEpoch
        #expect(try await fleet.cluster(cluster)?.leaderID == oldLeader.id)
        try await fleet.push(bundles.good, version: "1.1")
        let id = try await fleet.startRollout("1.1", RolloutPolicy(maxUnavailable: 1, maxParallelClusters: 2, healthTimeoutSeconds: 30))

        // Mid-download: a member has some chunks from its leader staged, not all (one member at
        // a time, in id order: the member that will take over).
        let staged = try await fleet.waitFast("a member of \(cluster) mid-download") {
            [acting, other].lazy.compactMap { node in node.stagedChunks().flatMap { $0 > 0 && $0 < total ? (node.id, $0) : nil } }.first
        }
        oldLeader.kill()  // both processes: a dead server
        print("killed the leader \(oldLeader.id) with \(staged.0) at chunk \(staged.1) of \(total)")

        let takeover = try await fleet.wait("\(acting.id) to lead \(cluster)") {
            try await fleet.cluster(cluster).flatMap { $0.leaderID == acting.id ? $0 : nil }
        }
        #expect(takeover.leaderEpoch == epoch + 1)
        let changes = try await fleet.events().filter { $0.kind == "cluster.leader-changed" && $0.detail.contains("\(oldLeader.id) → \(acting.id)") }
        #expect(changes.count == 1)

        // The old leader comes back: a member now, under the acting leader.
        try oldLeader.start()
        let rejoined = try await fleet.wait("\(oldLeader.id) to register again") {
            try await fleet.agentInfo(oldLeader.id).flatMap { $0.connected ? $0 : nil }
        }
        #expect(rejoined.role == .member)

        let done = try await fleet.waitRollout(id, "succeeded") { $0.state.isTerminal }
        #expect(done.state == .succeeded, "\(done.message)")
        #expect(done.totals.healthy == 6)
        _ = try await fleet.wait("every agent on 1.1: \(Self.versions(nodes))") { nodes.allSatisfy { $0.settled(on: "1.1") } ? true : nil }
        try await Self.expectUpgradedOnce(fleet, nodes, rollout: id)
        // The acting leader upgraded last in its cluster: after both its members were healthy.
        let events = try await fleet.events().filter { $0.kind == "rollout.agent-state" && $0.rolloutID == id }
        let leaderInstalls = try #require(events.first { $0.detail.hasPrefix("agent \(acting.id): ") && $0.detail.hasSuffix("→ installing") })
        for member in [oldLeader, other] {
            let healthy = try #require(events.first { $0.detail.hasPrefix("agent \(member.id): ") && $0.detail.hasSuffix("→ healthy") })
            #expect(healthy.id < leaderInstalls.id, "\(member.id) healthy after the leader \(acting.id) began installing")
        }
    }
}

extension FaultTests {
    @Test("kill -9 a member's upgrader at each step of its switch of the main program: the rollout's record ends equal to what the member runs", arguments: ["main-after-record", "main-after-stop", "main-after-switch", "main-after-start", "main-after-confirm"])
    func upgraderKilledMidSwitch(_ point: String) async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let subnets = try await fleet.makeAgents(subnets: [1], perSubnet: 2)
        let member = subnets[0][1]
        // The member again, now with its upgrader set to die at that step of the switch.
        member.kill()
        try member.start(environment: ["CASCADE_FAULT_POINT": point])
        _ = try await fleet.wait("\(member.id) to be back") { try await fleet.agentInfo(member.id).flatMap { $0.connected ? $0 : nil } }
        try await fleet.push(bundles.good, version: "1.1")
        let id = try await fleet.startRollout("1.1", RolloutPolicy(failureBudgetPercent: 50, healthTimeoutSeconds: 30))
        // Killed after it stopped the main program, the upgrader leaves nothing running: the
        // service manager starts the unit again, as systemd's Restart= does.
        let serviceManager = Task {
            while !Task.isCancelled {
                let running = ["main", "upgrader"].contains { member.pid($0).map(member.isOurs) ?? false }
                if !running {
                    member.reap()
                    try member.start()
                    return
                }
                try await Task.sleep(for: .milliseconds(50))  // the watch's pace
            }
        }
        defer { serviceManager.cancel() }
        _ = try await fleet.waitRollout(id, "ended") { $0.state.isTerminal }
        // Whatever the repair chose, the record says it.
        let agreed = try await fleet.wait("the record of \(member.id) to match what it runs") { () async throws -> String? in
            let row = try await fleet.rollout(id).agents.first { $0.agentID == member.id }?.progress
            if member.settled(on: "1.1"), row?.state == .healthy { return "1.1, healthy" }
            if member.settled(on: "1.0"), row?.state == .rolledBack || row?.state == .failed { return "1.0, \(row?.state.description ?? "")" }
            return nil
        }
        print("\(point): \(member.id) ends on \(agreed)")
    }

    @Test("a leader killed for good mid-download: the acting leader finishes its cluster, the old leader is counted lost, and the rollout ends partial within its budget")
    func leaderNeverReturns() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator(["--stall-timeout", "5s"])
        let bundles = try await Bundles.shared()
        let total = try Bundles.chunkCount(bundles.good)
        let subnets = try await fleet.makeAgents(perSubnet: 3)
        let cluster = "127.0.1.0/24"
        let (oldLeader, acting, other) = (subnets[0][0], subnets[0][1], subnets[0][2])
        #expect(try await fleet.cluster(cluster)?.leaderID == oldLeader.id)
        try await fleet.push(bundles.good, version: "1.1")
        // One of the six may be lost: 1 × 100 ≤ 20 × 6.
        let id = try await fleet.startRollout("1.1", RolloutPolicy(
            maxUnavailable: 1, maxParallelClusters: 2, failureBudgetPercent: 20, healthTimeoutSeconds: 30))
        _ = try await fleet.waitFast("a member of \(cluster) mid-download") {
            [acting, other].lazy.compactMap { node in node.stagedChunks().flatMap { $0 > 0 && $0 < total ? node.id : nil } }.first
        }
        oldLeader.kill()  // both processes, and it never comes back
        _ = try await fleet.wait("\(acting.id) to lead \(cluster)") {
            try await fleet.cluster(cluster).flatMap { $0.leaderID == acting.id ? $0 : nil }
        }
        let done = try await fleet.waitRollout(id, "ended") { $0.state.isTerminal }
        let status = try await fleet.rollout(id)
        // Within its budget, but not every agent upgraded: partial, never succeeded.
        #expect(done.state == .partial, "\(done.message): \(status.agents.map { "\($0.agentID) \($0.progress.state) \($0.progress.error)" })")
        #expect(done.message == "succeeded with 0 rolled back and 1 failed of 6 agents (within the failure budget of 20%)")
        #expect(done.totals.healthy == 5 && done.totals.failed == 1)
        let lost = try #require(status.agents.first { $0.agentID == oldLeader.id })
        #expect(lost.progress.state == .failed && lost.progress.error.hasPrefix("lost: \(oldLeader.id)"), "\(lost.progress.error)")
        let live = subnets.flatMap { $0 }.filter { $0.id != oldLeader.id }
        _ = try await fleet.wait("every live agent on 1.1") { live.allSatisfy { $0.settled(on: "1.1") } ? true : nil }
    }

    @Test("kill -9 a member's main program mid-download: its upgrader restarts it, it resumes from its last verified chunk and re-downloads less than the release")
    func memberKilled() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let total = try Bundles.chunkCount(bundles.good)
        let size = try FileManager.default.attributesOfItem(atPath: bundles.good)[.size] as? Int ?? 0
        let nodes = try await fleet.makeAgents(subnets: [1], perSubnet: 2)[0]
        let member = nodes[1]
        try await fleet.push(bundles.good, version: "1.1")
        let id = try await fleet.startRollout("1.1", RolloutPolicy(healthTimeoutSeconds: 30))

        // Killed once a quarter is staged (or later, but before the end).
        _ = try await fleet.waitFast("\(member.id) mid-download") {
            member.stagedChunks().flatMap { $0 >= total / 4 && $0 < total ? $0 : nil }
        }
        let killed = try member.killMain()
        // The progress record is what the killed process had verified and fsynced (the upgrader
        // restarts the main program only after its poll interval).
        let atKill = try #require(member.stagedChunks())

        let done = try await fleet.waitRollout(id, "succeeded") { $0.state.isTerminal }
        #expect(done.state == .succeeded, "\(done.message)")
        _ = try await fleet.wait("both agents on 1.1: \(Self.versions(nodes))") { nodes.allSatisfy { $0.settled(on: "1.1") } ? true : nil }
        #expect(member.pid("main") != killed)
        try await Self.expectUpgradedOnce(fleet, nodes, rollout: id)

        // The observable: the runtime logs where each fetch starts ("from chunk K of N (B of T
        // bytes staged)"). The restarted process (another pid) started at the chunk the killed one
        // had verified, so it fetched T - B bytes: fewer than the release.
        let fetches = member.log.split(separator: "\n").filter { $0.contains(" fleet: fetching 1.1 from ") && !$0.contains(" cascade-agent[\(killed)] ") }
        let first = try #require(fetches.first, "no fetch after the restart in:\n\(member.log)")
        let pattern = try NSRegularExpression(pattern: #"from chunk (\d+) of (\d+) \((\d+) of (\d+) bytes staged\)"#)
        let line = String(first)
        let match = try #require(pattern.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)), "\(line)")
        let numbers = (1...4).map { Int((line as NSString).substring(with: match.range(at: $0))) ?? -1 }
        let (resumedAt, stagedBytes, releaseBytes) = (numbers[0], numbers[2], numbers[3])
        #expect(numbers[1] == total)
        #expect(resumedAt == atKill, "\(first); the record said \(atKill)")
        #expect(releaseBytes == size)
        #expect(stagedBytes == atKill * Int(Bundles.chunkSize))
        let redownloaded = releaseBytes - stagedBytes
        #expect(redownloaded < size && redownloaded > 0)
        print("member killed at chunk \(atKill) of \(total): re-downloaded \(redownloaded) of \(size) bytes")
    }

    @Test("a leader serves a corrupted chunk: the member discards it, reports it (rollout.bad-chunk), fetches from the coordinator and installs the exact bytes")
    func corruptedChunk() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let nodes = try await fleet.makeAgents(subnets: [1], perSubnet: 2) { id in
            id == "a1-01" ? "test-corrupt-served-chunks = 5" : ""
        }[0]
        let (leader, member) = (nodes[0], nodes[1])
        try await fleet.push(bundles.good, version: "1.1")
        let id = try await fleet.startRollout("1.1", RolloutPolicy(healthTimeoutSeconds: 30))
        let done = try await fleet.waitRollout(id, "succeeded") { $0.state.isTerminal }
        #expect(done.state == .succeeded, "\(done.message)")
        _ = try await fleet.wait("both agents on 1.1: \(Self.versions(nodes))") { nodes.allSatisfy { $0.settled(on: "1.1") } ? true : nil }
        try await Self.expectUpgradedOnce(fleet, nodes, rollout: id)

        // Reported: one bad-chunk event about the leader, from the member.
        let bad = try await fleet.events().filter { $0.kind == "rollout.bad-chunk" }
        #expect(bad.count == 1, "\(bad)")
        #expect(bad.first?.agentID == leader.id)
        #expect(bad.first?.actor.contains(member.id) == true, "\(bad)")
        // Discarded, then fetched from the coordinator from that chunk on.
        #expect(member.log.contains("discarded chunk 5 from leader"), "\(member.log)")
        #expect(member.log.contains("fetching 1.1 from coordinator from chunk 5 "), "\(member.log)")
        // The exact bytes: every installed file is the release's.
        for node in nodes {
            let release = "\(node.root)/main/releases/1.1"
            #expect(try sha256Hex(ofFile: "\(release)/share/padding") == bundles.padSHA256, "\(node.id)")
            for binary in ["cascade-agent", "cascade-upgrader"] {
                #expect(try sha256Hex(ofFile: "\(release)/bin/\(binary)") == (try sha256Hex(ofFile: try builtProduct(binary))), "\(node.id) \(binary)")
            }
        }
    }

    @Test("a badly signed release: the coordinator refuses the push with the exact error; a release signed by a key the agents do not pin is never installed")
    func badlySigned() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()

        // A signature that does not verify, and a key nobody pins.
        let manifest = try ManifestBuilder(chunkSize: Bundles.chunkSize).build(fileAt: bundles.good, name: "cascade-agent", version: "1.1")
        var tampered = try SignedManifest.sign(manifest, with: fleet.signingKey)
        tampered.signature[0] ^= 0xFF
        let connection = try await fleet.ops.connection()
        let refused = await #expect(throws: RPCError.self) {
            _ = try await connection.clientStreaming(OperatorService.pushRelease) { writer in
                try await writer.write(PushReleaseRequest(signedManifest: tampered))
            }
        }
        #expect(refused?.code == .invalidArgument)
        #expect(refused?.message.contains("the manifest signature (64 bytes) does not verify with key \(fleet.signingKey.publicKey.keyID)") == true, "\(String(describing: refused))")
        let stranger = try Ed25519PrivateKey.generate()
        let unknown = await #expect(throws: RPCError.self) { try await fleet.push(bundles.good, version: "1.1", key: stranger) }
        #expect(unknown?.code == .invalidArgument)
        #expect(unknown?.message.contains("signed by key \"\(stranger.publicKey.keyID)\", which is not a pinned release key") == true, "\(String(describing: unknown))")
        #expect(try await fleet.ops.unary(OperatorService.listReleases, ListReleasesRequest()).releases.allSatisfy { !$0.complete })

        // The coordinator trusts a second key the agents do not pin: it takes the push, the
        // agents refuse the release.
        let nodes = try await fleet.makeAgents(subnets: [1], perSubnet: 2)[0]
        let info = try await fleet.push(bundles.good, version: "1.1", key: fleet.coordinatorOnlyKey)
        #expect(info?.complete == true)
        let id = try await fleet.startRollout("1.1", RolloutPolicy(healthTimeoutSeconds: 30))
        let failed = try await fleet.waitRollout(id, "failed") { $0.state.isTerminal }
        #expect(failed.state == .failed)
        let leaderRow = try #require(failed.agents.first { $0.agentID == nodes[0].id })
        #expect(leaderRow.progress.state == .failed)
        #expect(leaderRow.progress.error.contains("which is not a pinned release key"), "\(leaderRow.progress.error)")
        #expect(failed.agents.first { $0.agentID == nodes[1].id }?.progress.state == .pending)
        for node in nodes {
            #expect(node.settled(on: "1.0"), "\(node.id): \(Self.versions([node]))")
            #expect(!node.releases("main").contains("1.1"))
            let downloads = (try? FileManager.default.contentsOfDirectory(atPath: "\(node.root)/state/fleet/downloads")) ?? []
            #expect(downloads.isEmpty, "\(node.id) staged \(downloads)")
        }
    }

    @Test("pause with downloads in flight on 12 agents: no install starts while paused (a finished download waits), the record equals what agents run, and after resume every agent ends on 1.1 once")
    func pauseAndResume() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let total = try Bundles.chunkCount(bundles.good)
        let subnets = try await fleet.makeAgents(subnets: [1, 2, 3], perSubnet: 4)
        let nodes = subnets.flatMap { $0 }
        let members = subnets.flatMap { $0.dropFirst() }
        try await fleet.push(bundles.good, version: "1.1")
        let id = try await fleet.startRollout("1.1", RolloutPolicy(maxUnavailable: 2, maxParallelClusters: 3, healthTimeoutSeconds: 30))
        _ = try await fleet.waitFast("a member mid-download") {
            members.contains { ($0.stagedChunks() ?? 0) > 0 && ($0.stagedChunks() ?? total) < total } ? true : nil
        }
        _ = try await fleet.ops.unary(OperatorService.pauseRollout, RolloutControlRequest(rolloutID: id, reason: "fault suite"))

        // Installs already handed to an upgrader finish; downloads finish and then wait, each
        // member saying so in its log.
        let held = try await fleet.waitRollout(id, "no install in flight while paused") { status in
            status.state == .paused && !status.agents.contains { $0.progress.state == .installing }
                && status.agents.filter { $0.progress.state == .downloading }.allSatisfy { row in
                    members.first { $0.id == row.agentID }.map {
                        $0.stagedChunks() == total && $0.log.contains("rollout \(id) is paused: the downloaded release is installed when it resumes")
                    } ?? false
                }
        }
        let upgraded = Set(held.agents.filter { $0.progress.state == .healthy }.map(\.agentID))
        let waiting = held.agents.filter { $0.progress.state == .downloading }.map(\.agentID)
        #expect(upgraded.count < members.count, "every member had upgraded before the pause: \(held.agents)")
        try await fleet.holds("no install starts while paused", for: .seconds(4)) {
            let status = try await fleet.rollout(id)
            let now = Set(status.agents.filter { rank($0.progress.state) >= 3 }.map(\.agentID))
            return status.state == .paused && now == upgraded
                && nodes.allSatisfy { upgraded.contains($0.id) ? $0.version("main") == "1.1" : $0.version("main") == "1.0" }
        }
        #expect(!waiting.isEmpty, "no member was holding a download: the pause came too late to test the hold")
        print("paused: \(upgraded.count) upgraded, \(waiting.count) holding a finished download: \(waiting.sorted())")
        // The record equals what agents run: healthy ones run 1.1, every other one 1.0.
        for node in nodes { #expect(node.settled(on: upgraded.contains(node.id) ? "1.1" : "1.0"), "\(node.id): \(Self.versions([node]))") }

        _ = try await fleet.ops.unary(OperatorService.resumeRollout, RolloutControlRequest(rolloutID: id, reason: "fault suite"))
        let done = try await fleet.waitRollout(id, "ended", within: .seconds(150)) { $0.state.isTerminal }
        #expect(done.state == .succeeded, "\(done.message)")
        _ = try await fleet.wait("every agent on 1.1: \(Self.versions(nodes))") { nodes.allSatisfy { $0.settled(on: "1.1") } ? true : nil }
        try await Self.expectUpgradedOnce(fleet, nodes, rollout: id)
        // Nobody installed while paused: every move to installing lies outside the pause.
        let events = try await fleet.events().filter { $0.rolloutID == id }
        let pausedAt = try #require(events.first { $0.kind == "rollout.state" && $0.detail.contains("→ paused") }).id
        let resumedAt = try #require(events.first { $0.kind == "rollout.state" && $0.detail.contains("paused → running") }).id
        let during = events.filter { $0.id > pausedAt && $0.id < resumedAt && $0.kind == "rollout.agent-state" && $0.detail.hasSuffix("→ installing") }
        // (An install handed over just before the pause may be recorded a moment after it, so
        // the check is on the members that held a download.)
        let waitingInstalledLate = waiting.allSatisfy { agent in !during.contains { $0.detail.hasPrefix("agent \(agent):") } }
        #expect(waitingInstalledLate, "a member holding its download installed while paused: \(during.map(\.detail))")
    }

    @Test("abort mid-rollout: the rollout ends aborted and no agent changes version afterwards")
    func abort() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let bundles = try await Bundles.shared()
        let total = try Bundles.chunkCount(bundles.good)
        let nodes = try await fleet.makeAgents(subnets: [1], perSubnet: 4)[0]
        try await fleet.push(bundles.good, version: "1.1")
        let id = try await fleet.startRollout("1.1", RolloutPolicy(maxUnavailable: 1, healthTimeoutSeconds: 30))
        _ = try await fleet.waitFast("a member mid-download") {
            nodes.dropFirst().contains { ($0.stagedChunks() ?? 0) > 0 && ($0.stagedChunks() ?? total) < total } ? true : nil
        }
        let aborted = try await fleet.ops.unary(OperatorService.abortRollout, RolloutControlRequest(rolloutID: id, reason: "fault suite"))
        #expect(aborted.state == .aborted)

        // Whatever was in flight settles (an install already handed over may finish); then
        // nothing changes any more.
        let snapshot = try await fleet.wait("every agent settled after the abort: \(Self.versions(nodes))") { () -> [String: String]? in
            let versions = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0.version("main") ?? "-") })
            return nodes.allSatisfy { $0.settled(on: versions[$0.id]!) } ? versions : nil
        }
        // The member that was downloading reports how its upgrade ended (aborted).
        let rows = try await fleet.waitRollout(id, "no agent in flight") { status in
            !status.agents.contains { (1...3).contains(rank($0.progress.state)) }
        }
        try await fleet.holds("versions unchanged after the abort", for: .seconds(3)) {
            nodes.allSatisfy { $0.version("main") == snapshot[$0.id] && $0.version("upgrader") == snapshot[$0.id] }
        }
        let final = try await fleet.rollout(id)
        #expect(final.state == .aborted)
        #expect(final.message.contains("fault suite"), "\(final.message)")
        #expect(final.agents == rows.agents)
        #expect(snapshot[nodes[0].id] == "1.0", "the leader upgrades last, never after an abort")
        #expect(nodes.filter { snapshot[$0.id] == "1.1" }.count <= 1, "\(snapshot)")
        for row in final.agents where row.progress.state == .pending {
            #expect(snapshot[row.agentID] == "1.0")
        }
        #expect(final.clusterProgress.allSatisfy { $0.phase == .aborted }, "\(final.clusterProgress)")
    }
}
