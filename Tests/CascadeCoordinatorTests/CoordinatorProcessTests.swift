import CascadeAPI
import CascadeNet
import CascadeRPC
import CascadeStore
import CascadeTestSupport
import Foundation
import Testing

/// The real `cascade-coordinator` binary, on a data directory that outlives it.
struct CoordinatorProcess {
    let process: ChildProcess
    let address: SocketAddress

    static func start(_ fixture: CoordinatorFixture, data: String, listen: String = "127.0.0.1:0", extra: [String] = []) async throws -> CoordinatorProcess {
        let process = try launch(fixture, data: data, listen: listen, extra: extra)
        let line = try await process.line(startingWith: "cascade-coordinator: listening on ")
        let text = line.dropFirst("cascade-coordinator: listening on ".count).prefix { $0 != "," }
        return CoordinatorProcess(process: process, address: try SocketAddress(parsing: String(text)))
    }

    /// Starts the binary without waiting for it: with `uri` as its certificate's identity and
    /// `prefix` before it (`/bin/sh -c 'ulimit ...; exec "$0" "$@"'`, say).
    static func launch(
        _ fixture: CoordinatorFixture, data: String, listen: String = "127.0.0.1:0", uri: String = "cascade://coordinator/main",
        prefix: [String] = [], mergeStandardError: Bool = false, extra: [String] = []
    ) throws -> ChildProcess {
        let name = uri == "cascade://coordinator/main" ? "coordinator-process" : "process-" + uri.split(separator: "/").suffix(2).joined(separator: "-")
        let tls = try fixture.pki.configuration(uri: uri, name: name)
        let command = prefix + [try builtProduct("cascade-coordinator"),
            "--data", data, "--listen", listen, "--ca", tls.trustRootsFile, "--cert", tls.certificateChainFile,
            "--key", tls.privateKeyFile, "--trusted-key", fixture.data.file("release-key.pub.pem"),
            "--engine-interval", "50ms", "--report-interval", "1s",
        ] + extra
        return try ChildProcess(command[0], Array(command.dropFirst()), mergeStandardError: mergeStandardError)
    }
}

@Suite("Coordinator process")
struct CoordinatorProcessTests {
    @Test("kill -9 mid-rollout loses nothing acknowledged, and the restarted coordinator finishes the rollout")
    func killNine() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let data = fixture.data.file("process-data")
        var coordinator = try await CoordinatorProcess.start(fixture, data: data)
        defer { coordinator.process.kill9() }
        var ops = try CoordinatorFixture.client(fixture.pki, coordinator.address, uri: "cascade://operator/alice")
        try await fixture.push(try fixture.release("1.1"), via: ops)
        var agents: [FakeAgent] = []
        for (id, cpu) in [("a1-01", 0.9), ("a1-02", 0.5), ("a1-03", 0.7)] {
            let agent = try FakeAgent(pki: fixture.pki, coordinator: coordinator.address, id: id, address: "127.0.1.\(agents.count + 11)")
            _ = try await agent.register(cpu: cpu)
            try await agent.connect()
            agents.append(agent)
        }
        let id = try await ops.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: "1.1")).rolloutID
        _ = try await agents[0].instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        upgrade(agents[1], rollout: id)
        agents[2].report(.instructed, rollout: id)
        agents[2].report(.downloading, rollout: id, bytes: 65_536)
        // Acknowledged: the status the operator reads back is what was committed.
        let before = try await waitUntilStatus(ops, id) { status in
            status.agents.first { $0.agentID == "a1-02" }?.progress.state == .healthy
                && status.agents.first { $0.agentID == "a1-03" }?.progress.bytesDone == 65_536
        }

        coordinator.process.kill9()
        _ = try await coordinator.process.exitStatus()
        for agent in agents { agent.disconnect() }
        ops.close()

        coordinator = try await CoordinatorProcess.start(fixture, data: data)
        ops = try CoordinatorFixture.client(fixture.pki, coordinator.address, uri: "cascade://operator/alice")
        defer { ops.close() }
        let after = try await ops.unary(OperatorService.getRollout, RolloutQuery(rolloutID: id, includeAgents: true))
        #expect(after.state == .running)
        #expect(after.agents == before.agents)
        let releases = try await ops.unary(OperatorService.listReleases, ListReleasesRequest())
        #expect(releases.releases.map(\.complete) == [true])

        // The fleet comes back and the rollout continues where it stopped.
        var again: [FakeAgent] = []
        for (index, old) in agents.enumerated() {
            let agent = try FakeAgent(pki: fixture.pki, coordinator: coordinator.address, id: old.id, address: old.address)
            // a1-02 upgraded before the crash: it comes back running 1.1.
            _ = try await agent.register(version: old.id == "a1-02" ? "1.1" : "1.0", cpu: [0.9, 0.5, 0.7][index])
            try await agent.connect()
            again.append(agent)
        }
        defer { for agent in again { agent.disconnect() } }
        // a1-01 came back first, so it leads again (or a1-03 took over while it was gone).
        let clusters = try await ops.unary(OperatorService.listClusters, ListClustersRequest())
        let leader = try #require(clusters.clusters.first?.leaderID)
        let leaderAgent = try #require(again.first { $0.id == leader })
        _ = try await leaderAgent.instruction("the cluster order again") { $0.clusterRollout?.rolloutID == id }
        for agent in again where agent.id != leader && agent.id != "a1-02" {
            agent.report(.installing, rollout: id)
            agent.report(.healthy, rollout: id)
        }
        let sixth = try #require(again.first { $0.id != leader && $0.id == "a1-03" } ?? again.first { $0.id == "a1-02" })
        _ = try await sixth.instruction("the second-instruction cue") { $0.secondInstructionCue?.rolloutID == id }
        leaderAgent.report(.installing, rollout: id)
        leaderAgent.report(.healthy, rollout: id)
        let done = try await waitUntilStatus(ops, id) { $0.state == .succeeded }
        #expect(done.totals.healthy == 3)
        coordinator.process.kill9()
    }

    @Test("the coordinator's command line: usage errors exit 2 with a hint, bad files exit 1 with one sentence")
    func commandLine() async throws {
        let binary = try builtProduct("cascade-coordinator")
        let missing = try ChildProcess(binary, ["--listen", "127.0.0.1:0"], mergeStandardError: true)
        #expect(try await missing.exitStatus() == 2)
        #expect(missing.lines.first?.hasPrefix("cascade-coordinator: ") == true)
        #expect(missing.lines.contains("Try 'cascade-coordinator --help'."))
        let directory = try TemporaryDirectory()
        let bad = try ChildProcess(binary, [
            "--data", directory.file("data"), "--ca", "/nonexistent/ca.pem", "--cert", "/nonexistent/c.pem",
            "--key", "/nonexistent/k.pem", "--trusted-key", "/nonexistent/release.pub.pem", "--listen", "127.0.0.1:0",
        ], mergeStandardError: true)
        #expect(try await bad.exitStatus() == 1)
        #expect(bad.lines == ["cascade-coordinator: cannot start: cannot read the trusted key file /nonexistent/release.pub.pem"])
        let help = try ChildProcess(binary, ["--help"])
        #expect(try await help.exitStatus() == 0)
        #expect(help.lines.contains { $0.contains("--trusted-key FILE") })
        // The database file the help names is the one the store opens (README agrees: SpecConsistency).
        #expect(help.lines.contains { $0.contains("--data DIR") && $0.contains(CoordinatorStore.databaseFileName) })
        #expect(!help.lines.contains { $0.contains("cascade.db") })
    }
}

/// Polls the rollout's status until `done` holds (15 s at most).
func waitUntilStatus(_ client: RPCClient, _ id: UInt64, _ done: (RolloutStatus) -> Bool) async throws -> RolloutStatus {
    let deadline = ContinuousClock.now + .seconds(15)
    while true {
        let status = try await client.unary(OperatorService.getRollout, RolloutQuery(rolloutID: id, includeAgents: true))
        if done(status) { return status }
        guard ContinuousClock.now < deadline else { throw TestFailure("rollout \(id) never reached the expected state: \(status)") }
        try await Task.sleep(for: .milliseconds(20))  // poll interval, bounded by the deadline above
    }
}

@Suite("Coordinator restarts")
struct CoordinatorRestartTests {
    @Test("a client resumes its TLS session with a coordinator restarted on the same data directory")
    func resumptionAcrossRestart() async throws {
        let fixture = try CoordinatorFixture()
        let data = fixture.data.file("restart-data")
        var coordinator = try await CoordinatorProcess.start(fixture, data: data)
        defer { coordinator.process.kill9() }
        let client = try CoordinatorFixture.client(fixture.pki, coordinator.address, uri: "cascade://operator/alice")
        defer { client.close() }
        _ = try await client.unary(OperatorService.listReleases, ListReleasesRequest())
        #expect(try await client.connection().isResumedTLS == false)
        let keys = try String(contentsOfFile: data + "/tls-ticket-keys", encoding: .utf8)
        #expect(keys.trimmingCharacters(in: .whitespacesAndNewlines).count == 160)
        #expect(try FileManager.default.attributesOfItem(atPath: data + "/tls-ticket-keys")[.posixPermissions] as? Int == 0o600)

        let address = coordinator.address
        coordinator.process.kill9()
        _ = try await coordinator.process.exitStatus()
        coordinator = try await CoordinatorProcess.start(fixture, data: data, listen: "\(address)")
        // The client reconnects on its next call and resumes: no certificate exchange.
        let connection = try await waitUntilConnected(client)
        #expect(connection.isResumedTLS)
        await fixture.shutdown()
    }
}

/// The client's next working connection (the first attempts may meet the restart).
func waitUntilConnected(_ client: RPCClient) async throws -> RPCConnection {
    let deadline = ContinuousClock.now + .seconds(15)
    while true {
        if (try? await client.unary(OperatorService.listReleases, ListReleasesRequest())) != nil {
            return try await client.connection()
        }
        guard ContinuousClock.now < deadline else { throw TestFailure("the client never reconnected") }
        try await Task.sleep(for: .milliseconds(20))  // retry interval, bounded by the deadline above
    }
}
