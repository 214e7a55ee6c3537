import CascadeAPI
import CascadeAgentRuntime
import CascadeCoordinator
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Foundation
import Synchronization
import Testing

/// Records installs in memory; never restarts anything.
final class RecordingInstaller: ReleaseInstaller {
    let installed = Mutex<[String]>([])
    func install(artifact path: String, manifest: Manifest) async throws -> InstallOutcome {
        installed.withLock { $0.append(manifest.version) }
        return .running(version: manifest.version)
    }
}

/// A scripted leader built only on CascadeAPI and CascadeRPC: it registers first (so it leads its
/// subnet), holds a coordinator session, serves `cascade.Leader/Join` to the real members, and
/// sends them whatever orders the test scripts.
final class HostileLeader: Sendable {
    let id = "evil"
    let server: RPCServer
    let coordinator: RPCClient
    let joined = Mutex<[String: StreamWriter<Instruction>]>([:])
    let fromCoordinator = Mutex<[Instruction]>([])
    private let reports: AsyncStream<AgentReport>.Continuation
    private let reportStream: AsyncStream<AgentReport>
    private let session = Mutex<Task<Void, any Error>?>(nil)

    init(_ fixture: CoordinatorFixture, ip: String) throws {
        let router = RPCRouter()
        let tls = try TLSContext(configuration: fixture.pki.configuration(uri: "cascade://agent/evil", ipAddresses: [ip]), side: .server)
        server = try RPCServer(bindingTo: SocketAddress(ip: ip, port: 0), tls: tls, router: router)
        coordinator = try CoordinatorFixture.client(fixture.pki, fixture.address, uri: "cascade://agent/evil", from: ip)
        (reportStream, reports) = AsyncStream.makeStream()
        router.bidirectional(LeaderService.join) { reports, writer, context in
            guard let member = context.peer?.id else { return }
            self.joined.withLock { $0[member] = writer }
            for try await _ in reports {}
        }
        server.start()
    }

    /// Registers with the best idle ratios and opens the session; returns the epoch.
    func enlist() async throws -> UInt64 {
        let assignment = try await coordinator.unary(CoordinatorService.register, RegisterRequest(
            address: server.localAddress.ipString, memberPort: UInt32(server.localAddress.port), mainVersion: "1.0",
            upgraderVersion: "1.0", idle: IdleRatios(cpu: 1, memory: 1)))
        let connection = try await coordinator.connection()
        let stream = reportStream
        session.withLock {
            $0 = Task {
                try await connection.bidirectional(CoordinatorService.session) { writer, instructions in
                    let reader = Task {
                        for try await instruction in instructions { self.fromCoordinator.withLock { $0.append(instruction) } }
                    }
                    for await report in stream { try await writer.write(report) }
                    reader.cancel()
                }
            }
        }
        return assignment.leaderEpoch
    }

    func send(_ instruction: Instruction, to member: String) async throws {
        guard let writer = joined.withLock({ $0[member] }) else { throw TestFailure("\(member) has not joined") }
        try await writer.write(instruction)
    }

    func report(_ report: AgentReport) { reports.yield(report) }

    func stop() async {
        reports.finish()
        session.withLock { $0?.cancel() }
        coordinator.close()
        await server.shutdown(drainTimeout: .milliseconds(200))
    }
}

@Suite("Hostile peers against the real coordinator")
struct HostilePeerTests {
    /// A real member runtime at `ip`, following whoever the coordinator names.
    func member(_ fixture: CoordinatorFixture, _ id: String, ip: String, directory: TemporaryDirectory) throws
        -> (AgentRuntime, RecordingInstaller, Task<Void, any Error>) {
        let installer = RecordingInstaller()
        let configuration = AgentRuntimeConfiguration(
            coordinatorAddress: fixture.address, bindAddress: ip,
            tls: try fixture.pki.configuration(uri: "cascade://agent/\(id)", ipAddresses: [ip]),
            releaseKeys: [fixture.signingKey.publicKey], stateDirectory: directory.file(id), mainVersion: "1.0",
            upgraderVersion: "1.0", defaultReportInterval: .milliseconds(200), idleOverride: IdleRatios(cpu: 0.2, memory: 0.2),
            retryBackoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200)))
        let runtime = try AgentRuntime(configuration: configuration, installer: installer)
        return (runtime, installer, Task { try await runtime.run() })
    }

    func rolloutRows(_ fixture: CoordinatorFixture, _ id: UInt64) async throws -> [String: AgentRolloutState] {
        let status = try await fixture.operatorClient.unary(OperatorService.getRollout, RolloutQuery(rolloutID: id, includeAgents: true))
        return Dictionary(uniqueKeysWithValues: status.agents.map { ($0.agentID, $0.progress.state) })
    }

    func events(_ fixture: CoordinatorFixture, kind: String) async throws -> [Event] {
        try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events.filter { $0.kind == kind }
    }

    @Test("a hostile leader offers an older release, an unnamed newer one, another program's and a 'rollback': real members refuse each, stay on their version, and the audit log names the leader; its relayed 'healthy' is not recorded")
    func hostileLeader() async throws {
        let fixture = try CoordinatorFixture()
        let directory = try TemporaryDirectory(prefix: "cascade-hostile")
        let evil = try HostileLeader(fixture, ip: "127.0.70.1")
        let epoch = try await evil.enlist()
        try await fixture.push(try fixture.release("1.1"))
        let older = try fixture.release("0.9"), newer = try fixture.release("1.2")
        var otherManifest = try fixture.release("1.1", size: 1000).manifest
        otherManifest.name = "cascade-other"
        let otherProgram = try SignedManifest.sign(otherManifest, with: fixture.signingKey)

        var members: [String: (AgentRuntime, RecordingInstaller, Task<Void, any Error>)] = [:]
        for (index, id) in ["m1", "m2"].enumerated() {
            members[id] = try member(fixture, id, ip: "127.0.70.\(index + 2)", directory: directory)
        }
        _ = try await waitUntil(within: .seconds(20), "both members to join the hostile leader") {
            evil.joined.withLock { $0.count } == 2 ? true : nil
        }
        let status = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1"))
        let rollout = status.rolloutID
        _ = try await waitUntil(within: .seconds(20), "the coordinator's order to the leader") {
            evil.fromCoordinator.withLock { $0.contains { $0.clusterRollout?.rolloutID == rollout } } ? true : nil
        }
        // The members heard from the coordinator what the rollout installs (checked by what follows).
        let offers: [(String, UpgradeOrder)] = [
            ("an older signed release", UpgradeOrder(rolloutID: rollout, releaseVersion: "0.9", signedManifest: older.signed)),
            ("a newer signed release no rollout named", UpgradeOrder(rolloutID: rollout, releaseVersion: "1.2", signedManifest: newer.signed)),
            ("another program's release", UpgradeOrder(rolloutID: rollout, releaseVersion: "1.1", signedManifest: otherProgram)),
            ("an older release with the rollback flag", UpgradeOrder(rolloutID: rollout, releaseVersion: "0.9", signedManifest: older.signed, rollback: true)),
        ]
        for (count, (what, order)) in offers.enumerated() {
            for id in members.keys.sorted() {
                try await evil.send(Instruction(leaderEpoch: epoch, upgrade: order), to: id)
                _ = try await waitUntil(within: .seconds(20), "\(id) to refuse \(what)") {
                    members[id]!.0.status.ordersRefused == count + 1 ? true : nil
                }
            }
        }
        for (id, (runtime, installer, _)) in members {
            #expect(installer.installed.withLock { $0 }.isEmpty, "\(id) installed something")
            #expect(runtime.status.mainVersion == "1.0")
            #expect(runtime.status.progress?.state != .healthy)
        }
        // Each refusal is a security event naming the leader, reported by the member itself.
        let refused = try await waitUntilAsync(within: .seconds(20), "8 security events") {
            let found = try await events(fixture, kind: "security.order-refused")
            return found.count >= 8 ? found : nil
        }
        #expect(refused.count == 8)
        #expect(refused.allSatisfy { $0.agentID == "evil" && $0.actor.hasPrefix("agent m") }, "\(refused)")

        // A relayed "healthy" is advisory: the coordinator records non-terminal relays only.
        func batch(_ states: [String: AgentRolloutState]) -> AgentReport {
            AgentReport(leaderEpoch: epoch, cluster: ClusterReport(
                clusterID: "127.0.70.0/24", rolloutID: rollout, members: states.map { id, state in
                    MemberStatus(agentID: id, connected: true, progress: AgentProgress(rolloutID: rollout, state: state, releaseVersion: "1.1"))
                }, complete: false))
        }
        evil.report(batch(["m1": .instructed, "m2": .healthy]))
        evil.report(batch(["m1": .healthy, "m2": .instructed]))
        let rows = try await waitUntilAsync(within: .seconds(20), "both relayed 'instructed' states") {
            let rows = try await rolloutRows(fixture, rollout)
            return rows["m1"] == .instructed && rows["m2"] == .instructed ? rows : nil
        }
        #expect(rows["m1"] == .instructed && rows["m2"] == .instructed, "the relayed healthy states were recorded: \(rows)")

        for (runtime, _, task) in members.values {
            await runtime.shutdown()
            _ = try? await task.value
        }
        await evil.stop()
        await fixture.shutdown()
    }

    @Test("an agent that registers with an address not its own is refused; the verified address places it")
    func addressNotItsOwn() async throws {
        let fixture = try CoordinatorFixture()
        func register(from source: String, certificate: [String], claiming address: String) async -> Result<Assignment, RPCError> {
            do {
                let client = RPCClient(
                    target: fixture.address,
                    tls: try TLSContext(configuration: fixture.pki.configuration(uri: "cascade://agent/a14", ipAddresses: certificate), side: .client),
                    from: try SocketAddress(ip: source, port: 0), expectedRole: .coordinator)
                defer { client.close() }
                return .success(try await client.unary(CoordinatorService.register, RegisterRequest(
                    address: address, memberPort: 7443, mainVersion: "1.0", upgraderVersion: "1.0", idle: IdleRatios(cpu: 0.9, memory: 0.9))))
            } catch let error as RPCError {
                return .failure(error)
            } catch {
                return .failure(RPCError(.unknown, "\(error)"))
            }
        }
        // Its certificate says .14 and it connects from .14, but claims .19 (another /28 in the report).
        guard case .failure(let claimed) = await register(from: "127.0.50.14", certificate: ["127.0.50.14"], claiming: "127.0.50.19") else {
            Issue.record("a false address was accepted")
            return
        }
        #expect(claimed.code == .permissionDenied)
        #expect(claimed.message.contains("registered address 127.0.50.19, but its verified address is 127.0.50.14"), "\(claimed.message)")
        // It connects from an address its certificate does not name.
        guard case .failure(let moved) = await register(from: "127.0.51.14", certificate: ["127.0.50.14"], claiming: "") else {
            Issue.record("a source outside the certificate was accepted")
            return
        }
        #expect(moved.code == .permissionDenied)
        #expect(moved.message.contains("connects from 127.0.51.14, which is not among its certificate's addresses"), "\(moved.message)")
        let none = try await fixture.operatorClient.unary(OperatorService.listAgents, ListAgentsRequest())
        #expect(none.agents.isEmpty)
        // Both refusals are security events in the audit log.
        let refusals = try await events(fixture, kind: "security.registration-refused")
        #expect(refusals.count == 2 && refusals.allSatisfy { $0.agentID == "a14" })
        // Leaving the address empty means "where I connect from".
        let honest = await register(from: "127.0.50.14", certificate: ["127.0.50.14"], claiming: "")
        guard case .success(let placed) = honest else {
            Issue.record("an honest registration was refused: \(honest)")
            return
        }
        #expect(placed.clusterPrefix == "127.0.50.0/24")
        let listed = try await fixture.operatorClient.unary(OperatorService.listAgents, ListAgentsRequest())
        #expect(listed.agents.map(\.address) == ["127.0.50.14"])
        await fixture.shutdown()
    }

    @Test("fault reports move a leader only on confirmed evidence: another cluster's agent is ignored, one member's three reports are not enough, a second member's are")
    func faultEvidence() async throws {
        let fixture = try CoordinatorFixture()
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a1-03", 0.4), ("a2-01", 0.9), ("a2-02", 0.5)])
        func leader(_ prefix: String) async throws -> String {
            let clusters = try await fixture.operatorClient.unary(OperatorService.listClusters, ListClustersRequest()).clusters
            return clusters.first { $0.prefix == prefix }?.leaderID ?? ""
        }
        #expect(try await leader("127.0.1.0/24") == "a1-01")
        #expect(try await leader("127.0.2.0/24") == "a2-01")
        func accuse(_ reporter: String, _ source: String, chunk: UInt32) async throws {
            _ = try await agents[reporter]!.client.unary(CoordinatorService.reportFault, FaultReport(
                rolloutID: 1, sourceID: source, releaseVersion: "1.1", chunkIndex: chunk, detail: "chunk-hash-mismatch"))
        }
        // An agent of another cluster accuses a2-01: recorded, not counted.
        for chunk in 0..<3 { try await accuse("a1-02", "a2-01", chunk: UInt32(chunk)) }
        // One member accuses its own leader three times.
        for chunk in 0..<3 { try await accuse("a1-02", "a1-01", chunk: UInt32(chunk)) }
        #expect(try await events(fixture, kind: "rollout.fault-ignored").count == 3)
        #expect(try await events(fixture, kind: "rollout.bad-chunk").count == 3)
        #expect(try await leader("127.0.1.0/24") == "a1-01")
        #expect(try await leader("127.0.2.0/24") == "a2-01")
        // A second member of the cluster confirms: the leader is replaced by the best live member.
        try await accuse("a1-03", "a1-01", chunk: 0)
        let next = try await waitUntilAsync(within: .seconds(10), "the leader to move") {
            let current = try await leader("127.0.1.0/24")
            return current == "a1-01" ? nil : current
        }
        #expect(next == "a1-02")
        #expect(try await leader("127.0.2.0/24") == "a2-01")
        for agent in agents.values { agent.disconnect() }
        await fixture.shutdown()
    }

    @Test("a batch report counts only from a cluster's leader and only for its own members")
    func batchesOnlyForOwnCluster() async throws {
        let fixture = try CoordinatorFixture()
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5), ("a2-01", 0.9), ("a2-02", 0.5)])
        let rollout = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(
            releaseVersion: "1.1", policy: RolloutPolicy(maxParallelClusters: 2))).rolloutID
        func batch(_ cluster: String, _ ids: [String]) -> AgentReport {
            AgentReport(cluster: ClusterReport(clusterID: cluster, rolloutID: rollout, members: ids.map {
                MemberStatus(agentID: $0, progress: AgentProgress(rolloutID: rollout, state: .downloading, releaseVersion: "1.1"))
            }))
        }
        // A member speaks for its leader; a leader speaks for another cluster's member. Each is
        // followed, on the same session, by something that does count, to wait on.
        agents["a1-02"]!.send(batch("127.0.1.0/24", ["a1-01"]))
        agents["a1-02"]!.report(.instructed, rollout: rollout)
        _ = try await waitUntilAsync(within: .seconds(10), "a1-02's own report") {
            try await rolloutRows(fixture, rollout)["a1-02"] == .instructed ? true : nil
        }
        agents["a1-01"]!.send(batch("127.0.1.0/24", ["a2-02"]))
        agents["a1-01"]!.send(batch("127.0.1.0/24", ["a1-02"]))
        let rows = try await waitUntilAsync(within: .seconds(10), "the counted reports") {
            let rows = try await rolloutRows(fixture, rollout)
            return rows["a1-02"] == .downloading ? rows : nil
        }
        #expect(rows["a1-01"] == .pending, "a member's batch spoke for its leader: \(rows)")
        #expect(rows["a2-02"] == .pending, "a leader's batch spoke for another cluster: \(rows)")
        for agent in agents.values { agent.disconnect() }
        await fixture.shutdown()
    }

    @Test("placed by certificate: the agent's IP SAN decides its cluster wherever it connects from; no IP SAN is refused")
    func placementByCertificate() async throws {
        let fixture = try CoordinatorFixture(placement: .certificate)
        func register(_ id: String, certificate: [String], claiming address: String = "") async throws -> Assignment {
            let client = RPCClient(
                target: fixture.address,
                tls: try TLSContext(configuration: fixture.pki.configuration(uri: "cascade://agent/\(id)", ipAddresses: certificate), side: .client),
                from: try SocketAddress(ip: "127.0.0.1", port: 0), expectedRole: .coordinator)
            defer { client.close() }
            return try await client.unary(CoordinatorService.register, RegisterRequest(
                address: address, memberPort: 7443, mainVersion: "1.0", upgraderVersion: "1.0"))
        }
        // Behind NAT every agent connects from 127.0.0.1; each certificate names its address.
        #expect(try await register("n1", certificate: ["127.0.52.7"]).clusterPrefix == "127.0.52.0/24")
        #expect(try await register("n2", certificate: ["127.0.53.7", "127.0.54.7"], claiming: "127.0.54.7").clusterPrefix == "127.0.54.0/24")
        let claimed = await #expect(throws: RPCError.self) { _ = try await register("n3", certificate: ["127.0.55.7"], claiming: "127.0.56.7") }
        #expect(claimed?.code == .permissionDenied)
        let none = await #expect(throws: RPCError.self) { _ = try await register("n4", certificate: []) }
        #expect(none?.code == .permissionDenied)
        #expect(none?.message.contains("has no IP address SAN") == true, "\(none?.message ?? "")")
        let listed = try await fixture.operatorClient.unary(OperatorService.listAgents, ListAgentsRequest())
        #expect(listed.agents.map(\.address) == ["127.0.52.7", "127.0.54.7"])
        await fixture.shutdown()
    }

    @Test("one member's report moves a leader that holds no session with the coordinator")
    func silentLeaderOneReport() async throws {
        let fixture = try CoordinatorFixture()
        // The leader registered but never opened its session: registered, live, silent.
        let silent = try FakeAgent(fixture, id: "a1-01", address: "127.0.1.11")
        _ = try await silent.register(cpu: 0.9)
        let agents = try await makeAgents(fixture, [("a1-02", 0.5), ("a1-03", 0.4)])
        func leader() async throws -> String? {
            let clusters = try await fixture.operatorClient.unary(OperatorService.listClusters, ListClustersRequest()).clusters
            return clusters.first { $0.prefix == "127.0.1.0/24" }?.leaderID
        }
        #expect(try await leader() == "a1-01")
        _ = try await agents["a1-02"]!.client.unary(CoordinatorService.reportFault, FaultReport(
            rolloutID: 1, sourceID: "a1-01", releaseVersion: "1.1", chunkIndex: 3, detail: "chunk-hash-mismatch"))
        let next = try await waitUntilAsync(within: .seconds(10), "the leader to move") {
            let current = try await leader()
            return current == "a1-01" ? nil : current
        }
        #expect(next == "a1-02")
        let moved = try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events
            .filter { $0.kind == "cluster.leader-changed" }
        #expect(moved.last?.detail.contains("a1-01 served a bad chunk and its session is down") == true, "\(moved)")
        silent.disconnect()
        for agent in agents.values { agent.disconnect() }
        await fixture.shutdown()
    }

    @Test("a cluster that waits on agents who will not act ends: a withholding leader's members and a member that never connects fail, and so does the rollout")
    func stalledClusterEnds() async throws {
        let fixture = try CoordinatorFixture(stall: .seconds(1))
        try await fixture.push(try fixture.release("1.1"))
        // Scripted agents do nothing they are told: a1-01 leads and instructs nobody.
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        let gone = try FakeAgent(fixture, id: "a1-03", address: "127.0.1.13")
        _ = try await gone.register(cpu: 0.4)
        let rollout = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        let failed = try await waitForRollout(fixture, rollout, .failed)
        let rows = Dictionary(uniqueKeysWithValues: try await rolloutStatus(fixture, rollout).agents.map { ($0.agentID, $0.progress) })
        #expect(rows["a1-02"]?.state == .failed)
        #expect(rows["a1-02"]?.error.contains("not instructed: the leader a1-01 sent a1-02 no first instruction") == true, "\(rows)")
        #expect(rows["a1-03"]?.state == .failed)
        #expect(rows["a1-03"]?.error.contains("lost: a1-03 was not connected") == true, "\(rows)")
        #expect(!failed.message.isEmpty)
        for agent in agents.values { agent.disconnect() }
        await fixture.shutdown()
    }

    @Test("a leader that never upgrades after its members are done fails, and the cluster with it")
    func leaderThatNeverUpgrades() async throws {
        let fixture = try CoordinatorFixture(stall: .seconds(3))
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        let rollout = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        // The member reports once its cluster runs (before, "instructed" is refused).
        _ = try await waitUntilAsync(within: .seconds(10), "the cluster to start") {
            try await rolloutStatus(fixture, rollout).clusterProgress.first?.phase == .members ? true : nil
        }
        agents["a1-02"]!.report(.instructed, rollout: rollout)
        agents["a1-02"]!.report(.healthy, rollout: rollout)
        try await waitForAgent(fixture, rollout, "a1-02", .healthy)
        _ = try await waitForRollout(fixture, rollout, .failed)
        let rows = Dictionary(uniqueKeysWithValues: try await rolloutStatus(fixture, rollout).agents.map { ($0.agentID, $0.progress) })
        #expect(rows["a1-02"]?.state == .healthy)
        #expect(rows["a1-01"]?.state == .failed)
        #expect(rows["a1-01"]?.error.contains("the leader a1-01 did not upgrade") == true, "\(rows)")
        for agent in agents.values { agent.disconnect() }
        await fixture.shutdown()
    }
}
