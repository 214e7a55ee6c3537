import CascadeAPI
import CascadeNet
import CascadeTestSupport
import Foundation
import Testing

/// Scrapes of real agent processes (fleet.conf `metrics-listen`) and of the coordinator, in
/// one cluster during a rollout.
@Suite("Agent metrics", .serialized)
struct AgentMetricsTests {
    /// Where a node's current main program serves /metrics (the last address it logged).
    static func metricsAddress(_ fleet: Fleet, _ node: FleetNode, after previous: SocketAddress? = nil) async throws -> SocketAddress {
        try await fleet.wait("\(node.id) to log where it serves metrics", within: .seconds(60)) {
            let marker = "metrics on http://"
            guard let line = node.log.split(separator: "\n").last(where: { $0.contains(marker) }),
                  let start = line.range(of: marker) else { return nil }
            let address = try SocketAddress(parsing: String(line[start.upperBound...].prefix { $0 != "/" }))
            return address == previous ? nil : address
        }
    }

    static func scrape(_ address: SocketAddress) async throws -> (scrape: PrometheusScrape, text: String) {
        let response = try await HTTPTestClient.get(address, "/metrics")
        guard response.status == 200 else { throw TestFailure("GET /metrics from \(address): \(response.status)") }
        #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        return (try PrometheusScrape(parsing: response.text), response.text)
    }

    static func scrapeUntil(_ fleet: Fleet, _ address: SocketAddress, _ what: String, within limit: Duration = .seconds(60),
                            _ done: @escaping (PrometheusScrape) -> Bool) async throws -> PrometheusScrape {
        try await fleet.wait(what, within: limit) {
            let scraped = try await scrape(address).scrape
            return done(scraped) ? scraped : nil
        }
    }

    @Test("agents serve /metrics: role, registrations, heartbeats; mid-rollout the leader's bytes from the coordinator equal the release and what it served is whole releases; afterwards the new processes report 1.1 healthy; promtool accepts both scrapes")
    func agentScrapes() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator(["--metrics-listen", "127.0.0.1:0"])
        let coordinatorLine = try await fleet.coordinatorLine(startingWith: "cascade-coordinator: metrics on http://")
        let coordinatorMetrics = try SocketAddress(parsing: String(
            coordinatorLine.dropFirst("cascade-coordinator: metrics on http://".count).dropLast("/metrics".count)))
        let bundles = try await Bundles.shared()
        let nodes = try await fleet.makeAgents(subnets: [1], perSubnet: 3, extra: { _ in "metrics-listen = 127.0.0.1:0" })[0]
        let (leader, members) = (nodes[0], Array(nodes.dropFirst()))
        var addresses: [String: SocketAddress] = [:]
        for node in nodes { addresses[node.id] = try await Self.metricsAddress(fleet, node) }

        // Joined, with their roles, registered and reporting.
        for node in nodes {
            let address = try #require(addresses[node.id])
            let scrape = try await Self.scrapeUntil(fleet, address, "\(node.id) joined and reporting") {
                $0.value("cascade_agent_fleet_joined") == 1 && ($0.value("cascade_heartbeats_total") ?? 0) > 0
            }
            let role = node.id == leader.id ? "leader" : "member"
            #expect(scrape.value("cascade_agent_role", ["role": role]) == 1, "\(node.id)")
            #expect(scrape.sum("cascade_agent_role") == 1)
            #expect((scrape.value("cascade_registrations_total") ?? 0) >= 1)
            #expect(scrape.value("cascade_agent_info", ["agent": node.id, "cluster": "127.0.1.0/24", "version": "1.0"]) == 1)
            #expect((scrape.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
            #expect((scrape.value("process_open_fds") ?? 0) > 0)
        }
        let (_, firstText) = try await Self.scrape(try #require(addresses[leader.id]))
        try await promtoolCheck(firstText, "an agent's scrape")

        let release = try #require(try await fleet.push(bundles.good, version: "1.1"))
        let id = try await fleet.startRollout("1.1", RolloutPolicy(maxUnavailable: 1, healthTimeoutSeconds: 30))
        // The first member has the whole release from its leader: hold the rollout there (the
        // leader upgrades last, so its process and counters stay).
        let leaderAddress = try #require(addresses[leader.id])
        _ = try await Self.scrapeUntil(fleet, leaderAddress, "the leader to serve a whole release") {
            ($0.value("cascade_release_bytes_served_total", ["release": "1.1"]) ?? 0) >= Double(release.size)
        }
        _ = try await fleet.ops.unary(OperatorService.pauseRollout, RolloutControlRequest(rolloutID: id, reason: "metrics test"))
        _ = try await fleet.waitRollout(id, "paused") { $0.state == .paused }
        let mid = try await Self.scrapeUntil(fleet, leaderAddress, "the leader's counters mid-rollout") {
            $0.value("cascade_release_bytes_received_total", ["release": "1.1", "source": "coordinator"]) == Double(release.size)
                && ($0.value("cascade_rpc_calls_total", ["method": "cascade.Leader/FetchChunks", "code": "OK"]) ?? 0) >= 1
        }
        let served = try #require(mid.value("cascade_release_bytes_served_total", ["release": "1.1"]))
        #expect(served >= Double(release.size) && served.truncatingRemainder(dividingBy: Double(release.size)) == 0,
                "the leader served \(served) bytes, not whole releases of \(release.size)")
        #expect((mid.sum("cascade_tls_handshakes_total", matching: ["outcome": "accepted"])) >= 1)
        #expect(mid.sum("cascade_tls_handshakes_total", matching: ["outcome": "refused"]) == 0)
        #expect(mid.value("cascade_chunk_verification_failures_total", ["source": "leader"]) == 0)
        #expect(mid.sum("cascade_agent_members", matching: ["rollout": "\(id)"]) == Double(members.count))
        // What members received from their leader is what the leader served (a member that
        // already switched to 1.1 runs a new process whose counters start again: it counts 0).
        var fromLeader = 0.0
        for member in members {
            if let scrape = try? await Self.scrape(try #require(addresses[member.id])).scrape {
                fromLeader += scrape.value("cascade_release_bytes_received_total", ["release": "1.1", "source": "leader"]) ?? 0
                #expect(scrape.value("cascade_release_bytes_received_total", ["release": "1.1", "source": "coordinator"]) == nil)
            }
        }
        #expect(fromLeader <= served)
        // The coordinator sent the cluster the release once: to its leader.
        // Every agent holds a session; one whose install was in flight at the pause reconnects
        // from its new process a moment later, so wait for all three.
        let coordinatorMid = try await scrapeCoordinatorUntil(coordinatorMetrics, "the coordinator's scrape mid-rollout with 3 sessions") {
            $0.value("cascade_rollout_state", ["rollout": "\(id)", "release": "1.1", "state": "paused"]) == 1
                && $0.value("cascade_sessions_open") == 3
        }
        #expect(coordinatorMid.value("cascade_release_bytes_served_total", ["release": "1.1"]) == Double(release.size))
        #expect(coordinatorMid.value("cascade_sessions_open") == 3)

        _ = try await fleet.ops.unary(OperatorService.resumeRollout, RolloutControlRequest(rolloutID: id, reason: "metrics test"))
        let done = try await fleet.waitRollout(id, "succeeded", within: .seconds(180)) { $0.state.isTerminal }
        #expect(done.state == .succeeded, "\(done.message)")
        _ = try await fleet.wait("every agent on 1.1") { nodes.allSatisfy { $0.settled(on: "1.1") } ? true : nil }
        // The new main programs serve again, on 1.1, and say how the rollout ended for them.
        for node in nodes {
            let address = try await Self.metricsAddress(fleet, node, after: addresses[node.id])
            let scrape = try await Self.scrapeUntil(fleet, address, "\(node.id) on 1.1, healthy") {
                $0.value("cascade_agent_info", ["agent": node.id, "cluster": "127.0.1.0/24", "version": "1.1"]) == 1
                    && $0.value("cascade_agent_rollout_state", ["rollout": "\(id)", "release": "1.1", "state": "healthy"]) == 1
                    && $0.value("cascade_agent_fleet_joined") == 1
            }
            #expect(scrape.sum("cascade_agent_rollout_state") == 1)
        }
        let coordinatorEnd = try await scrapeCoordinatorUntil(coordinatorMetrics, "the coordinator's scrape after the rollout") {
            $0.value("cascade_rollout_state", ["rollout": "\(id)", "release": "1.1", "state": "succeeded"]) == 1
        }
        #expect(coordinatorEnd.value("cascade_rollout_agents", ["rollout": "\(id)", "state": "healthy"]) == 3)
        #expect(coordinatorEnd.value("cascade_release_bytes_served_total", ["release": "1.1"]) == Double(release.size))
        #expect(coordinatorEnd.value("cascade_release_bytes_received_total", ["release": "1.1"]) == Double(release.size))
        #expect((coordinatorEnd.value("cascade_leader_changes_total") ?? 0) >= 1)
        #expect(coordinatorEnd.sum("cascade_tls_handshakes_total", matching: ["outcome": "refused"]) == 0)
        let (_, endText) = try await Self.scrape(try await Self.metricsAddress(fleet, leader))
        try await promtoolCheck(endText, "the upgraded leader's scrape")
        // README names every family an agent serves.
        let readme = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md").path, encoding: .utf8)
        for family in try PrometheusScrape(parsing: endText).order + mid.order {
            #expect(readme.contains("`\(family)") , "README does not name \(family)")
        }
    }
}

/// Scrapes the coordinator until `done` holds.
func scrapeCoordinatorUntil(_ address: SocketAddress, _ what: String, within limit: Duration = .seconds(30), _ done: @escaping (PrometheusScrape) -> Bool)
    async throws -> PrometheusScrape {
    try await waitUntilAsync(within: limit, what) {
        let response = try await HTTPTestClient.get(address, "/metrics")
        let scrape = try PrometheusScrape(parsing: response.text)
        return done(scrape) ? scrape : nil
    }
}

/// `promtool check metrics` when installed; otherwise says why it was skipped.
func promtoolCheck(_ text: String, _ what: String) async throws {
    guard let promtool = ExternalTool.find(["promtool"]) else {
        print("skipped promtool on \(what): promtool is not installed (Debian package prometheus; `make deps TEST_TOOLS=1` installs it as root)")
        return
    }
    let result = try await ExternalTool.run(promtool, ["check", "metrics"], input: text)
    #expect(result.status == 0, "promtool check metrics on \(what): \(result.output)\(result.errors)")
}
