import CascadeAPI
import CascadeRPC
import CascadeTestSupport
import Foundation
import Testing

/// #17 item 6: nothing an agent says can attack an operator. Identifiers are refused unless
/// they follow their grammar; free text is kept printable; cascadectl shows no raw control byte.
@Suite("What agents write, checked where it enters")
struct AgentTextTests {
    static let hostile = ["1.0\u{1b}[31m", "1.0\n2.0", "<script>alert(1)</script>", "1.0\u{9b}2J", "\u{1b}]0;owned\u{07}"]

    @Test("registration refuses versions and host names outside their grammar, quoting them printably")
    func registrationRefuses() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let agent = try FakeAgent(fixture, id: "a1-01", address: "127.0.1.11")
        for bad in Self.hostile {
            for request in [
                RegisterRequest(address: agent.address, memberPort: 7401, mainVersion: bad, upgraderVersion: "1.0"),
                RegisterRequest(address: agent.address, memberPort: 7401, mainVersion: "1.0", upgraderVersion: bad),
                RegisterRequest(address: agent.address, memberPort: 7401, mainVersion: "1.0", upgraderVersion: "1.0", hostname: bad),
            ] {
                let error = await #expect(throws: RPCError.self) { _ = try await agent.client.unary(CoordinatorService.register, request) }
                #expect(error?.code == .invalidArgument, "\(bad.debugDescription)")
                #expect(error?.message.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) } == false,
                        "\(error?.message.debugDescription ?? "")")
            }
        }
        let underscore = await #expect(throws: RPCError.self) {
            _ = try await agent.client.unary(CoordinatorService.register, RegisterRequest(
                address: agent.address, memberPort: 7401, mainVersion: "1.0", upgraderVersion: "1.0", hostname: "my_host"))
        }
        #expect(underscore?.message == "the host name \"my_host\" is not an RFC 1123 host name")
        // A good one passes, and is listed.
        _ = try await agent.client.unary(CoordinatorService.register, RegisterRequest(
            address: agent.address, memberPort: 7401, mainVersion: "1.0", upgraderVersion: "1.0", hostname: "node-5.example.net"))
        let listed = try await fixture.operatorClient.unary(OperatorService.listAgents, ListAgentsRequest()).agents
        #expect(listed.map(\.hostname) == ["node-5.example.net"])
        #expect(listed.map(\.mainVersion) == ["1.0"])
    }

    @Test("a heartbeat with a hostile version is refused; errors and fault details are kept printable, and cascadectl shows no raw control byte")
    func freeTextIsPrintable() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        try await fixture.push(try fixture.release("1.1"))
        let agents = try await makeAgents(fixture, [("a1-01", 0.9), ("a1-02", 0.5)])
        defer { for agent in agents.values { agent.disconnect() } }
        let id = try await fixture.operatorClient.unary(OperatorService.startRollout, StartRolloutRequest(
            releaseVersion: "1.1", policy: RolloutPolicy(failureBudgetPercent: 100))).rolloutID
        _ = try await agents["a1-01"]!.instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        let nasty = "\u{1b}[2J\u{1b}]0;owned\u{07}<script>alert(1)</script>\nsecond line"
        agents["a1-02"]!.report(.instructed, rollout: id)
        agents["a1-02"]!.report(.failed, rollout: id, error: nasty)
        try await waitForAgent(fixture, id, "a1-02", .failed)
        _ = try await agents["a1-02"]!.client.unary(CoordinatorService.reportFault, FaultReport(
            rolloutID: id, sourceID: "a1-01\u{1b}[31m", releaseVersion: "1.1", chunkIndex: 1, detail: nasty))

        let row = try #require(try await rolloutStatus(fixture, id).agents.first { $0.agentID == "a1-02" })
        #expect(row.progress.error == "\u{FFFD}[2J\u{FFFD}]0;owned\u{FFFD}<script>alert(1)</script>\u{FFFD}second line")
        let events = try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events
        #expect(events.contains { $0.detail.contains("\u{FFFD}second line") }, "\(events.map(\.detail))")
        for event in events {
            #expect(!event.detail.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }, "\(event.detail.debugDescription)")
        }

        // A heartbeat that claims a hostile version is refused: the session ends with its reason.
        let beating = agents["a1-01"]!
        beating.send(AgentReport(heartbeat: Heartbeat(idle: IdleRatios(cpu: 0.5, memory: 0.5), mainVersion: "1.0\u{1b}[31m", upgraderVersion: "1.0")))
        _ = try await waitUntilAsync(within: .seconds(10), "a1-01's session to end") {
            try await fixture.operatorClient.unary(OperatorService.listAgents, ListAgentsRequest()).agents
                .first { $0.agentID == "a1-01" }.flatMap { $0.connected ? nil : true }
        }
        let agentsNow = try await fixture.operatorClient.unary(OperatorService.listAgents, ListAgentsRequest()).agents
        #expect(agentsNow.allSatisfy { $0.mainVersion == "1.0" })

        // What cascadectl prints, text and JSON, holds no raw control byte.
        let ctl = try Ctl(fixture: fixture)
        for command in [["rollout", "status", "--agents"], ["events"], ["rollout", "status", "--agents", "--json"], ["events", "--json"]] {
            let result = try await ctl.run(command)
            #expect(result.status == 0, "\(command): \(result)")
            let raw = (result.lines.joined(separator: "\n") + result.errorOutput).unicodeScalars
            #expect(!raw.contains { ($0.value < 0x20 && $0 != "\n" && $0 != "\t") || (0x7F...0x9F).contains($0.value) }, "\(command)")
        }
    }
}
