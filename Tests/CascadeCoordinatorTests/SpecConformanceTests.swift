import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Foundation
import Synchronization
import Testing

/// A real `cascade-coordinator` process on its own data directory, reached over mutual TLS the
/// way an implementation written from `Protocols/` alone would reach it (issue 16): what these
/// tests check is what the coordinator says on the wire.
final class SpecRig: Sendable {
    let fixture: CoordinatorFixture
    let data: String
    private let current = Mutex<(process: CoordinatorProcess, ops: RPCClient)?>(nil)

    init() async throws {
        fixture = try CoordinatorFixture()
        data = fixture.data.file("spec-data")
        let process = try await CoordinatorProcess.start(fixture, data: data)
        let ops = try CoordinatorFixture.client(fixture.pki, process.address, uri: "cascade://operator/alice")
        current.withLock { $0 = (process, ops) }
    }

    private var running: (process: CoordinatorProcess, ops: RPCClient) {
        get throws {
            guard let running = current.withLock({ $0 }) else { throw TestFailure("the coordinator process is not running") }
            return running
        }
    }

    var address: SocketAddress { get throws { try running.process.address } }
    /// An operator client (operator alice).
    var ops: RPCClient { get throws { try running.ops } }

    /// A client with `uri`'s certificate, connecting from `ip` (its only IP SAN).
    func client(_ uri: String, from ip: String = "127.0.0.1") throws -> RPCClient {
        try CoordinatorFixture.client(fixture.pki, address, uri: uri, from: ip)
    }

    /// A scripted agent at `ip`, registered on `version` and holding its session (the session's
    /// first instruction, its assignment, has arrived).
    func agent(_ id: String, ip: String, version: String = "1.0") async throws -> FakeAgent {
        let agent = try FakeAgent(pki: fixture.pki, coordinator: address, id: id, address: ip)
        _ = try await agent.register(version: version, cpu: 0.5)
        try await agent.connect()
        _ = try await agent.instruction("its assignment on its session") { $0.assignment != nil }
        return agent
    }

    /// `cascadectl` with operator bob's certificate, talking to this process.
    func ctl() throws -> Ctl {
        var ctl = try Ctl()
        let tls = try fixture.pki.configuration(uri: "cascade://operator/bob")
        ctl.common = ["--coordinator", "\(try address)", "--ca", tls.trustRootsFile,
                      "--cert", tls.certificateChainFile, "--key", tls.privateKeyFile]
        return ctl
    }

    /// kill -9, then a new process on the same data directory and port.
    func restart() async throws {
        let (process, ops) = try running
        ops.close()
        process.process.kill9()
        _ = try await process.process.exitStatus()
        let again = try await CoordinatorProcess.start(fixture, data: data, listen: "\(process.address)")
        let client = try CoordinatorFixture.client(fixture.pki, again.address, uri: "cascade://operator/alice")
        current.withLock { $0 = (again, client) }
    }

    func stop() async {
        if let (process, ops) = current.withLock({ $0 }) {
            ops.close()
            process.process.kill9()
        }
        await fixture.shutdown()
    }

    /// Every event, oldest first: the latest 1000, which here is all of them.
    func events() async throws -> [Event] {
        let events = try await ops.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events
        guard events.count < 1000 else { throw TestFailure("the audit log outgrew what these tests read") }
        return events
    }
}

/// The error a call failed with, or nil if it succeeded.
func callFailure(_ body: () async throws -> Void) async -> RPCError? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(.unknown, "not an RPC error: \(error)")
    }
}

/// A message from `Protocols/vectors/services.txt`, by kind and name, decoded as `type`.
func serviceVector<M: WireMessage>(_ kind: String, _ name: String, as type: M.Type) throws -> M {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let text = try String(contentsOf: root.appendingPathComponent("Protocols/vectors/services.txt"), encoding: .utf8)
    for line in text.split(separator: "\n") {
        let columns = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        guard columns.count > 3, columns[0] == kind, columns[1] == name else { continue }
        guard let bytes = Hex.decode(columns[3]) else { throw TestFailure("vector \(name) has malformed hex") }
        return try M(serializedBytes: bytes)
    }
    throw TestFailure("services.txt has no \(kind) vector \(name)")
}

/// Each test checks one of the 15 places where the coordinator disagreed with
/// `Protocols/services.md` or `Protocols/rpc.md` (issue 16), against the real process.
@Suite("Protocols conformance of the coordinator process")
struct SpecConformanceTests {
    @Test("1. §3.1: an older agent's Register without the upgrader version (vector register-request-v0) is accepted; only an empty main version is INVALID_ARGUMENT")
    func registerWithoutUpgraderVersion() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        let request = try serviceVector("older", "register-request-v0", as: RegisterRequest.self)
        #expect(request.upgraderVersion.isEmpty && request.address == "127.0.1.5")
        let agent = try rig.client("cascade://agent/old1", from: "127.0.1.5")
        defer { agent.close() }
        let assignment = try await agent.unary(CoordinatorService.register, request)
        #expect(assignment.agentID == "old1")
        #expect(assignment.clusterID == "127.0.1.0/24")
        let listed = try await rig.ops.unary(OperatorService.listAgents, ListAgentsRequest()).agents
        #expect(listed.map(\.agentID) == ["old1"])
        #expect(listed.first?.mainVersion == "1.0.0")
        #expect(listed.first?.upgraderVersion == "")

        var noMain = request
        noMain.mainVersion = ""
        let refused = await callFailure { _ = try await agent.unary(CoordinatorService.register, noMain) }
        #expect(refused?.code == .invalidArgument)
        #expect(refused?.message == "the main version is empty")
    }

    @Test("2. §6 AgentInfo.11: RegisterRequest.7 hostname is stored (it survives a restart), listed, and shown by cascadectl agents list")
    func hostnameIsStored() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        let request = try serviceVector("ok", "register-request", as: RegisterRequest.self)
        #expect(request.hostname == "node-5")
        let agent = try rig.client("cascade://agent/h5", from: "127.0.1.5")
        _ = try await agent.unary(CoordinatorService.register, request)
        agent.close()
        #expect(try await rig.ops.unary(OperatorService.listAgents, ListAgentsRequest()).agents.map(\.hostname) == ["node-5"])

        try await rig.restart()
        #expect(try await rig.ops.unary(OperatorService.listAgents, ListAgentsRequest()).agents.map(\.hostname) == ["node-5"])
        let ctl = try rig.ctl()
        let table = try await ctl.run(["agents", "list"])
        #expect(table.status == 0, "\(table)")
        #expect(table.lines.first?.hasSuffix("  HOST") == true, "\(table)")
        #expect(table.lines.dropFirst().first?.hasSuffix("node-5") == true, "\(table)")
        let json = try await ctl.run(["agents", "list", "--json"])
        let rows = try #require(try json.json() as? [[String: Any]], "\(json)")
        #expect(rows.compactMap { $0["hostname"] as? String } == ["node-5"])

        // A new registration replaces it; a name that is not RFC 1123 (too long, not ASCII) is
        // refused (#17: what an agent writes is checked where it enters).
        var renamed = request
        renamed.hostname = "node-6.example.net"
        let again = try rig.client("cascade://agent/h5", from: "127.0.1.5")
        defer { again.close() }
        _ = try await again.unary(CoordinatorService.register, renamed)
        #expect(try await rig.ops.unary(OperatorService.listAgents, ListAgentsRequest()).agents.first?.hostname == "node-6.example.net")
        renamed.hostname = String(repeating: "é", count: 200)
        let tooLong = await callFailure { _ = try await again.unary(CoordinatorService.register, renamed) }
        #expect(tooLong?.code == .invalidArgument)
    }

    /// A pushed release 1.1 (5 chunks), another 1.2, and an agent client to fetch with.
    func releases(_ rig: SpecRig) async throws -> (one: (signed: SignedManifest, manifest: Manifest, bytes: [UInt8]), two: Manifest, agent: RPCClient) {
        let one = try rig.fixture.release("1.1")
        let two = try rig.fixture.release("1.2")
        try await rig.fixture.push(one, via: try rig.ops)
        try await rig.fixture.push(two, via: try rig.ops)
        #expect(one.manifest.chunkCount == 5)
        return (one, two.manifest, try rig.client("cascade://agent/f1", from: "127.0.1.11"))
    }

    /// The chunks a FetchChunks call streams, or the status it failed with.
    func fetch(_ agent: RPCClient, _ request: FetchChunksRequest) async -> Result<[Chunk], RPCError> {
        do {
            let connection = try await agent.connection()
            let chunks = Mutex<[Chunk]>([])
            try await connection.serverStreaming(CoordinatorService.fetchChunks, request) { stream in
                for try await chunk in stream { chunks.withLock { $0.append(chunk) } }
            }
            return .success(chunks.withLock { $0 })
        } catch let error as RPCError {
            return .failure(error)
        } catch {
            return .failure(RPCError(.unknown, "\(error)"))
        }
    }

    @Test("3. §3.1: FetchChunks naming the release only by artifact_sha256 streams its chunks; an unknown digest is NOT_FOUND, no name at all INVALID_ARGUMENT")
    func fetchByDigestOnly() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        let (one, _, agent) = try await releases(rig)
        defer { agent.close() }
        let chunks = try await fetch(agent, FetchChunksRequest(artifactSHA256: one.manifest.sha256)).get()
        #expect(chunks.map(\.index) == [0, 1, 2, 3, 4])
        #expect(chunks.flatMap(\.data) == one.bytes)
        #expect(chunks.map(\.sha256) == one.manifest.chunkHashes.map { Optional($0) })

        let unknown = SHA256.hash(Array("no such artifact".utf8))
        guard case .failure(let missing) = await fetch(agent, FetchChunksRequest(artifactSHA256: unknown)) else {
            Issue.record("an unknown digest was served")
            return
        }
        #expect(missing.code == .notFound)
        #expect(missing.message == "the coordinator has no release with artifact \(unknown.hex)")
        guard case .failure(let unnamed) = await fetch(agent, FetchChunksRequest()) else {
            Issue.record("a fetch naming no release was served")
            return
        }
        #expect(unnamed.code == .invalidArgument)
    }

    @Test("4. §3.1: FetchChunks with first_index equal to the chunk count is OUT_OF_RANGE; the last index streams one chunk")
    func fetchPastTheEnd() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        let (one, _, agent) = try await releases(rig)
        defer { agent.close() }
        for first in [UInt32(5), 6, 1000] {
            guard case .failure(let error) = await fetch(agent, FetchChunksRequest(version: "1.1", firstIndex: first)) else {
                Issue.record("first_index \(first) was answered with chunks or OK")
                continue
            }
            #expect(error.code == .outOfRange)
            #expect(error.message == "release 1.1 has 5 chunks; there is no chunk \(first)")
        }
        let last = try await fetch(agent, FetchChunksRequest(version: "1.1", firstIndex: 4)).get()
        #expect(last.map(\.index) == [4])
        let tail: [UInt8] = Array(one.bytes[(4 * 65_536)...])
        #expect(last.first?.data == tail)
    }

    @Test("5. §3.1: FetchChunks naming a version and another release's digest is NOT_FOUND (so is an unknown version)")
    func fetchMismatchedNames() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        let (one, two, agent) = try await releases(rig)
        defer { agent.close() }
        guard case .failure(let mismatch) = await fetch(agent, FetchChunksRequest(version: "1.1", artifactSHA256: two.sha256)) else {
            Issue.record("a version with another release's digest was served")
            return
        }
        #expect(mismatch.code == .notFound)
        #expect(mismatch.message == "release 1.1 has artifact \(one.manifest.sha256.hex), not \(two.sha256.hex)")
        guard case .failure(let unknown) = await fetch(agent, FetchChunksRequest(version: "9.9")) else {
            Issue.record("an unknown version was served")
            return
        }
        #expect(unknown.code == .notFound)
        #expect(unknown.message == "the coordinator has no release 9.9")
        // Both names agreeing is fine.
        #expect(try await fetch(agent, FetchChunksRequest(version: "1.1", artifactSHA256: one.manifest.sha256, maxChunks: 2)).get().map(\.index) == [0, 1])
    }

    @Test("6. §3.2: a new Session from the same agent ends the old one with ABORTED; the agent stays connected on the new one")
    func sessionReplaced() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        /// Opens a session on its own connection; counts its instructions; returns how it ended.
        func session(_ client: RPCClient, received: CtlBox<Int>) async throws -> Task<RPCError?, Never> {
            let connection = try await client.connection()
            return Task {
                await callFailure {
                    try await connection.bidirectional(CoordinatorService.session) { writer, instructions in
                        try await writer.write(AgentReport(heartbeat: Heartbeat(idle: IdleRatios(cpu: 0.5, memory: 0.5), mainVersion: "1.0", upgraderVersion: "1.0")))
                        for try await _ in instructions { received.withLock { $0 += 1 } }
                    }
                }
            }
        }
        let first = try rig.client("cascade://agent/s1", from: "127.0.1.11")
        defer { first.close() }
        _ = try await first.unary(CoordinatorService.register, RegisterRequest(
            address: "127.0.1.11", memberPort: 7401, mainVersion: "1.0", upgraderVersion: "1.0"))
        let firstCount = CtlBox(0), secondCount = CtlBox(0)
        let old = try await session(first, received: firstCount)
        // The old session is attached once its first instruction (the assignment) arrives.
        _ = try await waitUntil(within: .seconds(10), "the first session's assignment") { firstCount.withLock { $0 } > 0 ? true : nil }

        let second = try rig.client("cascade://agent/s1", from: "127.0.1.11")
        defer { second.close() }
        let new = try await session(second, received: secondCount)
        _ = try await waitUntil(within: .seconds(10), "the second session's assignment") { secondCount.withLock { $0 } > 0 ? true : nil }
        let ended = await old.value
        #expect(ended?.code == .aborted)
        #expect(ended?.message == "agent s1 opened a new session, which replaces this one")

        // Replaced is not offline: the agent is connected through its new session.
        let agents = try await rig.ops.unary(OperatorService.listAgents, ListAgentsRequest()).agents
        #expect(agents.map(\.connected) == [true])
        #expect(try await rig.events().filter { $0.kind == "agent.offline" }.isEmpty)
        second.close()
        #expect(await new.value != nil)
    }

    @Test("7. §3.7: StartRollout repeated with the same client token returns the first rollout, also after a restart; another release under that token is INVALID_ARGUMENT")
    func startRolloutIdempotent() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        try await rig.fixture.push(try rig.fixture.release("1.1"), via: try rig.ops)
        try await rig.fixture.push(try rig.fixture.release("1.2"), via: try rig.ops)
        let agent = try await rig.agent("a1", ip: "127.0.1.11")
        defer { agent.disconnect() }
        let request = StartRolloutRequest(releaseVersion: "1.1", clientToken: "retry-7f3a")
        let first = try await rig.ops.unary(OperatorService.startRollout, request)
        let repeated = try await rig.ops.unary(OperatorService.startRollout, request)
        #expect(repeated.rolloutID == first.rolloutID)
        #expect(repeated.releaseVersion == "1.1")
        #expect(try await rig.ops.unary(OperatorService.listRollouts, ListRolloutsRequest()).rollouts.map(\.rolloutID) == [first.rolloutID])

        // Without the token it is a new request, refused while the first is active.
        let other = await callFailure {
            _ = try await rig.ops.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1", clientToken: "retry-other"))
        }
        #expect(other?.code == .failedPrecondition)
        let reused = await callFailure {
            _ = try await rig.ops.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.2", clientToken: "retry-7f3a"))
        }
        #expect(reused?.code == .invalidArgument)
        #expect(reused?.message == "client token retry-7f3a already started rollout \(first.rolloutID) of release 1.1, not 1.2; use a new token for a new rollout")

        // The token is durable: a retry that reaches a restarted coordinator gets the same rollout.
        try await rig.restart()
        let afterRestart = try await rig.ops.unary(OperatorService.startRollout, request)
        #expect(afterRestart.rolloutID == first.rolloutID)
        #expect(afterRestart.fromVersion == "1.0")
        #expect(try await rig.ops.unary(OperatorService.listRollouts, ListRolloutsRequest()).rollouts.count == 1)
    }

    @Test("8. §6 ClusterProgress.8: waves count from 1 on the wire and in cascadectl; canary clusters are wave 1")
    func wavesFromOne() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        try await rig.fixture.push(try rig.fixture.release("1.1"), via: try rig.ops)
        let agents = [try await rig.agent("a1", ip: "127.0.1.11"), try await rig.agent("a2", ip: "127.0.2.11")]
        defer { for agent in agents { agent.disconnect() } }
        var policy = RolloutPolicy()
        policy.canaryClusters = 1
        let status = try await rig.ops.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1", policy: policy))
        #expect(status.clusterProgress.map(\.wave) == [1, 2])

        let ctl = try rig.ctl()
        let json = try await ctl.run(["rollout", "status", "\(status.rolloutID)", "--json"])
        let object = try #require(try json.json() as? [String: Any], "\(json)")
        let clusters = try #require(object["clusterProgress"] as? [[String: Any]], "\(json)")
        #expect(clusters.compactMap { $0["wave"] as? Int } == [1, 2])
        let text = try await ctl.run(["rollout", "status", "\(status.rolloutID)"])
        let rows = text.lines.filter { $0.hasPrefix("127.0.") }
        #expect(rows.count == 2, "\(text)")
        for (row, wave) in zip(rows, ["1", "2"]) {
            #expect(row.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first.map(String.init) == wave, "\(text)")
        }
        // The audit log names the same wave.
        let started = try await waitUntilAsync(within: .seconds(10), "the canary cluster to start") {
            try await rig.events().first { $0.kind == "rollout.cluster-state" && $0.detail.contains("started") }
        }
        #expect(started.detail.hasSuffix("started (wave 1)"), "\(started.detail)")

        // Without canaries every cluster is in wave 1.
        _ = try await rig.ops.unary(OperatorService.abortRollout, RolloutControlRequest(rolloutID: status.rolloutID))
        let flat = try await rig.ops.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1"))
        #expect(flat.clusterProgress.map(\.wave) == [1, 1])
    }

    @Test("9. §6 RolloutStatus.15: from_version is the lowest version the agents in scope ran when the rollout was requested, and stays so")
    func fromVersion() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        try await rig.fixture.push(try rig.fixture.release("1.1"), via: try rig.ops)
        let agents = [
            try await rig.agent("a1", ip: "127.0.1.11", version: "1.0.3"),
            try await rig.agent("a2", ip: "127.0.1.12", version: "0.9.10"),
            try await rig.agent("a3", ip: "127.0.1.13", version: "0.9.9"),
            // Outside the rollout's scope: it does not count.
            try await rig.agent("b1", ip: "127.0.2.11", version: "0.8"),
        ]
        defer { for agent in agents { agent.disconnect() } }
        let status = try await rig.ops.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1", clusters: ["127.0.1.0/24"]))
        #expect(status.fromVersion == "0.9.9")
        // What the agents run later does not change it.
        agents[2].heartbeat(cpu: 0.5, version: "1.1")
        _ = try await waitUntilAsync(within: .seconds(10), "a3's new version to be recorded") {
            try await rig.ops.unary(OperatorService.listAgents, ListAgentsRequest()).agents.first { $0.agentID == "a3" }?.mainVersion == "1.1" ? true : nil
        }
        #expect(try await rig.ops.unary(OperatorService.getRollout, RolloutQuery(rolloutID: status.rolloutID)).fromVersion == "0.9.9")
        let text = try await rig.ctl().run(["rollout", "status", "\(status.rolloutID)"])
        #expect(text.lines.contains("release   1.1 (from 0.9.9)"), "\(text)")
    }

    @Test("10. §6 RolloutStatus.10: created_by is the operator id, as ReleaseInfo.pushed_by")
    func createdByOperatorID() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        let pushed = try #require(try await rig.fixture.push(try rig.fixture.release("1.1"), via: try rig.ops))
        #expect(pushed.pushedBy == "alice")
        let agent = try await rig.agent("a1", ip: "127.0.1.11")
        defer { agent.disconnect() }
        let status = try await rig.ops.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1"))
        #expect(status.createdBy == "alice")
        #expect(try await rig.ops.unary(OperatorService.listRollouts, ListRolloutsRequest()).rollouts.map(\.createdBy) == ["alice"])
        _ = try await rig.ops.unary(OperatorService.abortRollout, RolloutControlRequest(rolloutID: status.rolloutID))

        let ctl = try rig.ctl()
        let started = try await ctl.run(["rollout", "start", "--release", "1.1", "--json"])
        #expect(started.status == 0, "\(started)")
        let object = try #require(try started.json() as? [String: Any], "\(started)")
        #expect(object["createdBy"] as? String == "bob")
        let text = try await ctl.run(["rollout", "status"])
        #expect(text.lines.contains { $0.hasPrefix("created ") && $0.hasSuffix(" by bob") }, "\(text)")
    }

    @Test("11. §3.6/§5: ReleaseStatus of a version the coordinator has no manifest for answers OK without `release`; ShowRelease is NOT_FOUND")
    func releaseStatusOfUnknownVersion() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        let unknown = try await rig.ops.unary(OperatorService.releaseStatus, ReleaseQuery(version: "7.7"))
        #expect(unknown.release == nil)
        #expect(unknown.presentBitmap.isEmpty)
        #expect(unknown.serializedBytes().isEmpty)
        let show = await callFailure { _ = try await rig.ops.unary(OperatorService.showRelease, ReleaseQuery(version: "7.7")) }
        #expect(show?.code == .notFound)

        // Half a push: the release and the chunks held; deleted: nothing held again.
        let release = try rig.fixture.release("1.1")
        try await rig.fixture.push(release, indices: [0, 2], via: try rig.ops)
        let partial = try await rig.ops.unary(OperatorService.releaseStatus, ReleaseQuery(version: "1.1"))
        #expect(partial.release?.chunksPresent == 2)
        #expect(partial.presentBitmap == [0b0000_0101])
        _ = try await rig.ops.unary(OperatorService.deleteRelease, ReleaseQuery(version: "1.1"))
        #expect(try await rig.ops.unary(OperatorService.releaseStatus, ReleaseQuery(version: "1.1")).release == nil)
    }

    @Test("12. §3.8: ListEvents with a limit and no after_id returns the latest events in id order; with after_id the next ones; cascadectl events --limit shows the latest")
    func latestEvents() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        var agents: [FakeAgent] = []
        for index in 1...4 { agents.append(try await rig.agent("a\(index)", ip: "127.0.\(index).11")) }
        defer { for agent in agents { agent.disconnect() } }
        let all = try await rig.events()
        #expect(all.count >= 8, "\(all)")
        #expect(all.map(\.id) == all.map(\.id).sorted())
        let latest = try await rig.ops.unary(OperatorService.listEvents, ListEventsRequest(limit: 3)).events
        #expect(latest.map(\.id) == all.suffix(3).map(\.id))
        let next = try await rig.ops.unary(OperatorService.listEvents, ListEventsRequest(limit: 2, afterID: all[0].id)).events
        #expect(next.map(\.id) == all[1...2].map(\.id))
        // A filter picks the latest of its subject.
        let forA1 = try await rig.ops.unary(OperatorService.listEvents, ListEventsRequest(limit: 1, agentID: "a1")).events
        #expect(forA1.map(\.id) == [try #require(all.last { $0.agentID == "a1" }).id])

        let json = try await rig.ctl().run(["events", "--limit", "1", "--json"])
        let rows = try #require(try json.json() as? [[String: Any]], "\(json)")
        let newest = try #require(try await rig.events().last)
        #expect(rows.compactMap { ($0["id"] as? NSNumber)?.uint64Value } == [newest.id])
    }

    @Test("13. §3.8/§6 Event.actor: \"operator alice\", \"agent a7\" or \"coordinator\", on the wire and in cascadectl")
    func actorForm() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        try await rig.fixture.push(try rig.fixture.release("1.1"), via: try rig.ops)
        let agent = try await rig.agent("a7", ip: "127.0.1.11")
        // Its session ends: the coordinator marks it offline (the coordinator's own event).
        agent.disconnect()
        let events = try await waitUntilAsync(within: .seconds(15), "a7's agent.offline event") {
            let events = try await rig.events()
            return events.contains { $0.kind == "agent.offline" } ? events : nil
        }
        #expect(events.first { $0.kind == "release.created" }?.actor == "operator alice")
        #expect(events.first { $0.kind == "agent.registered" }?.actor == "agent a7")
        #expect(events.first { $0.kind == "agent.offline" }?.actor == "coordinator")
        let form = /^(operator|agent) [A-Za-z0-9._-]{1,64}$|^coordinator$/
        for event in events {
            #expect(event.actor.wholeMatch(of: form) != nil, "\(event)")
        }
        let table = try await rig.ctl().run(["events", "--limit", "1000"])
        #expect(table.lines.contains { $0.contains(" operator alice ") && $0.contains("release.created") }, "\(table)")
        #expect(table.lines.contains { $0.contains(" agent a7 ") && $0.contains("agent.registered") }, "\(table)")
        #expect(table.lines.contains { $0.contains(" coordinator ") && $0.contains("agent.offline") }, "\(table)")
        #expect(!table.output.contains("/alice") && !table.output.contains("agent/") && !table.output.contains("coordinator/"), "\(table)")
    }

    @Test("14. rpc.md §4.5: an unknown method is UNIMPLEMENTED with the quoted message, whatever the caller's role")
    func unknownMethodMessage() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        let nope = RPCMethod<ListClustersRequest, ListClustersResponse>("cascade.Operator/Nope", allowedRoles: [.operator])
        let agent = try rig.client("cascade://agent/a1", from: "127.0.1.11")
        defer { agent.close() }
        for client in [try rig.ops, agent] {
            let error = await callFailure { _ = try await client.unary(nope, ListClustersRequest()) }
            #expect(error?.code == .unimplemented)
            #expect(error?.message == "the method \"cascade.Operator/Nope\" does not exist")
        }
    }

    @Test("15. rpc.md §8: a role not allowed for a method is PERMISSION_DENIED with the quoted message")
    func roleDeniedMessage() async throws {
        let rig = try await SpecRig()
        defer { Task { await rig.stop() } }
        let agent = try rig.client("cascade://agent/a1", from: "127.0.1.11")
        defer { agent.close() }
        let denied = await callFailure { _ = try await agent.unary(OperatorService.listAgents, ListAgentsRequest()) }
        #expect(denied?.code == .permissionDenied)
        #expect(denied?.message == "agent a1 may not call cascade.Operator/ListAgents")
        let operatorDenied = await callFailure {
            _ = try await rig.ops.unary(CoordinatorService.register, RegisterRequest(address: "127.0.0.1", memberPort: 7401, mainVersion: "1.0"))
        }
        #expect(operatorDenied?.code == .permissionDenied)
        #expect(operatorDenied?.message == "operator alice may not call cascade.Coordinator/Register")
    }
}
