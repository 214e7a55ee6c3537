import CascadeAPI
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Foundation
import Testing

/// cascadectl keeps its stated limits: `--timeout` is the whole command's deadline, and
/// `rollout watch` outlives a coordinator restart and says how it ended by its exit status.
@Suite("cascadectl limits")
struct CtlLimitsTests {
    @Test("--timeout 3s against a listener that never answers ends within 10% of 3 s (connecting included), exit 1, one sentence")
    func timeoutIsTheWholeDeadline() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        var ctl = try Ctl(fixture: fixture)
        // The kernel completes TCP handshakes into the backlog, but nothing ever accepts or
        // answers the TLS ClientHello: a coordinator that is there and silent.
        let silent = try TCPListener(bindingTo: try SocketAddress(ip: "127.0.0.1", port: 0))
        defer { silent.close() }
        // What starting the program and failing at once costs here (a refused connection), so
        // the bound below is about the deadline, not about a slow machine.
        let closedPort = try TCPListener(bindingTo: try SocketAddress(ip: "127.0.0.1", port: 0))
        let refusedAddress = "\(closedPort.localAddress)"
        closedPort.close()
        ctl.common[1] = refusedAddress
        let startup = ContinuousClock.now
        let refused = try await ctl.run(["--timeout", "3s", "rollout", "list"])
        let startupCost = ContinuousClock.now - startup
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.errorOutput.hasPrefix("cascadectl: cannot connect to the coordinator at \(refusedAddress): "), "\(refused)")

        ctl.common[1] = "\(silent.localAddress)"
        let start = ContinuousClock.now
        let result = try await ctl.run(["--timeout", "3s", "rollout", "list"])
        let elapsed = ContinuousClock.now - start
        #expect(result.status == 1, "\(result)")
        #expect(result.errorOutput == "cascadectl: cannot connect to the coordinator at \(silent.localAddress) within 3s (--timeout): "
            + "no TLS connection was established; check --coordinator\n", "\(result)")
        #expect(elapsed >= .seconds(3), "ended after \(elapsed), before its deadline")
        #expect(elapsed <= .milliseconds(3300) + startupCost, "took \(elapsed) with --timeout 3s (start-up and a refusal take \(startupCost))")
        print("cascadectl --timeout 3s against a silent listener: \(elapsed) (start-up and a refusal: \(startupCost))")
    }

    @Test("rollout watch reconnects across a kill -9 and restart of the coordinator and exits 0 when the rollout succeeds")
    func watchAcrossRestart() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let data = fixture.data.file("watch-data")
        var coordinator = try await CoordinatorProcess.start(fixture, data: data)
        defer { coordinator.process.kill9() }
        let address = coordinator.address
        let ops = try CoordinatorFixture.client(fixture.pki, address, uri: "cascade://operator/alice")
        defer { ops.close() }
        try await fixture.push(try fixture.release("1.1"), via: ops)
        let spec = [("a1-01", "127.0.1.11", 0.9), ("a1-02", "127.0.1.12", 0.5)]
        let agents = try await connectAgents(fixture, address, spec)
        var ctl = try Ctl(fixture: fixture)
        ctl.common[1] = "\(address)"
        let started = try await ctl.run(["rollout", "start", "--release", "1.1"])
        #expect(started.status == 0, "\(started)")

        let watcher = try ctl.start(["--timeout", "2s", "rollout", "watch"])
        defer { watcher.kill9() }
        _ = try await watcher.line(startingWith: "rollout 1 (release 1.1): running", within: .seconds(10))
        coordinator.process.kill9()
        _ = try await coordinator.process.exitStatus()
        for agent in agents { agent.disconnect() }
        _ = try await waitUntil(within: .seconds(10), "the watch to say it lost the coordinator") {
            watcher.standardError.contains("cascadectl: lost the watch of rollout 1: ") ? true : nil
        }
        // Down for a few reconnect attempts: the watch keeps trying instead of giving up.
        _ = try await waitUntil(within: .seconds(10), "a failed reconnect attempt") {
            watcher.standardError.contains("cascadectl: still reconnecting (attempt 2): ") ? true : nil
        }
        #expect(watcher.lines.allSatisfy { !$0.contains("succeeded") })

        coordinator = try await CoordinatorProcess.start(fixture, data: data, listen: "\(address)")
        _ = try await waitUntil(within: .seconds(15), "the watch to reconnect") {
            watcher.standardError.contains("cascadectl: reconnected to the coordinator at \(address); watching rollout 1 again") ? true : nil
        }
        let again = try await connectAgents(fixture, address, spec)
        defer { for agent in again { agent.disconnect() } }
        _ = try await waitUntilConnected(ops)
        let clusters = try await ops.unary(OperatorService.listClusters, ListClustersRequest())
        let leaderID = try #require(clusters.clusters.first?.leaderID)
        let leader = try #require(again.first { $0.id == leaderID })
        let member = try #require(again.first { $0.id != leaderID })
        upgrade(member, rollout: 1)
        _ = try await member.instruction("the second-instruction cue") { $0.secondInstructionCue?.rolloutID == 1 }
        upgrade(leader, rollout: 1)
        #expect(try await watcher.exitStatus(within: .seconds(15)) == 0, "\(watcher.lines) \(watcher.standardError)")
        #expect(watcher.lines.contains { $0.hasPrefix("rollout 1 (release 1.1): succeeded") }, "\(watcher.lines)")
    }

    @Test("rollout watch: exit 3, not 1, when it gives up (--give-up-after) or the coordinator refuses the watch")
    func watchGivesUp() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let coordinator = try await CoordinatorProcess.start(fixture, data: fixture.data.file("give-up-data"))
        defer { coordinator.process.kill9() }
        let ops = try CoordinatorFixture.client(fixture.pki, coordinator.address, uri: "cascade://operator/alice")
        defer { ops.close() }
        try await fixture.push(try fixture.release("1.1"), via: ops)
        let agents = try await connectAgents(fixture, coordinator.address, [("a1-01", "127.0.1.11", 0.9), ("a1-02", "127.0.1.12", 0.5)])
        defer { for agent in agents { agent.disconnect() } }
        var ctl = try Ctl(fixture: fixture)
        ctl.common[1] = "\(coordinator.address)"
        #expect(try await ctl.run(["rollout", "start", "--release", "1.1"]).status == 0)

        let unknown = try await ctl.run(["rollout", "watch", "99"])
        #expect(unknown.status == 3, "\(unknown)")
        #expect(unknown.errorOutput.hasPrefix("cascadectl: ") && unknown.errorOutput.contains("99"), "\(unknown)")

        let watcher = try ctl.start(["--timeout", "1s", "rollout", "watch", "1", "--give-up-after", "1s"])
        defer { watcher.kill9() }
        _ = try await watcher.line(startingWith: "rollout 1 (release 1.1): running", within: .seconds(10))
        coordinator.process.kill9()
        #expect(try await watcher.exitStatus(within: .seconds(15)) == 3, "\(watcher.lines) \(watcher.standardError)")
        let last = watcher.standardError.split(separator: "\n").last.map(String.init)
        #expect(last == "cascadectl: gave up watching rollout 1: the coordinator at \(coordinator.address) has been unreachable for 1s "
            + "(--give-up-after); the rollout may still be running", "\(watcher.standardError)")
    }
}

/// Fake agents that register with the coordinator at `address` and open their sessions.
private func connectAgents(
    _ fixture: CoordinatorFixture, _ address: SocketAddress, _ spec: [(id: String, address: String, cpu: Double)]
) async throws -> [FakeAgent] {
    var agents: [FakeAgent] = []
    for (id, source, cpu) in spec {
        let agent = try FakeAgent(pki: fixture.pki, coordinator: address, id: id, address: source)
        _ = try await agent.register(cpu: cpu)
        try await agent.connect()
        agents.append(agent)
    }
    return agents
}
