import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Foundation
import Testing

/// The real `cascade-coordinator` with its HTTP views on: where it says they listen.
struct ViewedCoordinator {
    let process: CoordinatorProcess
    let metrics: SocketAddress?
    let status: SocketAddress?

    static func start(_ fixture: CoordinatorFixture, data: String, metrics: String?, status: String?) async throws -> ViewedCoordinator {
        var extra: [String] = []
        if let metrics { extra += ["--metrics-listen", metrics] }
        if let status { extra += ["--status-listen", status] }
        let process = try await CoordinatorProcess.start(fixture, data: data, extra: extra)
        func address(_ prefix: String, _ suffix: String) async throws -> SocketAddress {
            let line = try await process.process.line(startingWith: prefix)
            return try SocketAddress(parsing: String(line.dropFirst(prefix.count).dropLast(suffix.count)))
        }
        return ViewedCoordinator(
            process: process,
            metrics: metrics == nil ? nil : try await address("cascade-coordinator: metrics on http://", "/metrics"),
            status: status == nil ? nil : try await address("cascade-coordinator: status page on http://", "/"))
    }
}

/// A file of this repository (README.md, say), from where this test file lies.
func repositoryFile(_ path: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(path).path
}

/// One scrape, checked as it is read: status, content type, and our strict parser.
func scrape(_ address: SocketAddress?) async throws -> (scrape: PrometheusScrape, text: String) {
    guard let address else { throw TestFailure("metrics are not served") }
    let response = try await HTTPTestClient.get(address, "/metrics")
    guard response.status == 200 else { throw TestFailure("GET /metrics: \(response.status) \(response.text)") }
    guard response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8" else {
        throw TestFailure("GET /metrics: Content-Type \(response.headers["content-type"] ?? "none")")
    }
    return (try PrometheusScrape(parsing: response.text), response.text)
}

/// Scrapes until `done` holds (the coordinator counts asynchronously), with a deadline.
@discardableResult
func scrapeUntil(_ address: SocketAddress?, _ what: String, within limit: Duration = .seconds(15), _ done: @escaping (PrometheusScrape) -> Bool)
    async throws -> PrometheusScrape {
    var last: PrometheusScrape?
    do {
        return try await waitUntilAsync(within: limit, what) {
            let scraped = try await scrape(address).scrape
            last = scraped
            return done(scraped) ? scraped : nil
        }
    } catch {
        throw TestFailure("\(error); the last scrape had \(last.map { ScrapeSummary.summary($0) } ?? "nothing")")
    }
}

private enum ScrapeSummary {
    static func summary(_ scrape: PrometheusScrape) -> String {
        scrape.order.filter { $0.hasPrefix("cascade_") }.map { name in
            let samples = scrape.family(name)?.samples.filter { !$0.name.hasSuffix("_bucket") } ?? []
            return samples.map { "\($0.name)\($0.labels.isEmpty ? "" : "\($0.labels)")=\($0.value)" }.joined(separator: " ")
        }.joined(separator: "\n")
    }
}

/// `promtool check metrics` on a scrape, when promtool is installed (else a printed reason).
func promtoolCheck(_ text: String, _ what: String) async throws {
    guard let promtool = ExternalTool.find(["promtool"]) else {
        print("skipped promtool on \(what): promtool is not installed (Debian package prometheus; `make deps TEST_TOOLS=1` installs it as root)")
        return
    }
    let result = try await ExternalTool.run(promtool, ["check", "metrics"], input: text)
    #expect(result.status == 0, "promtool check metrics on \(what): \(result.output)\(result.errors)")
}

@Suite("Coordinator metrics and status page", .serialized)
struct ObservabilityTests {
    @Test("a scrape of the real coordinator during a rollout counts what the test did: refused handshakes, calls by method and code, registrations, heartbeats, bytes per release, leader changes; promtool accepts it")
    func scrapeDuringRollout() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        // Both views on one listener.
        let coordinator = try await ViewedCoordinator.start(fixture, data: fixture.data.file("views"), metrics: "127.0.0.1:0", status: "127.0.0.1:0")
        defer { coordinator.process.process.kill9() }
        #expect(coordinator.metrics == coordinator.status)
        let address = coordinator.process.address
        let initial = try await scrape(coordinator.metrics).scrape
        #expect(initial.value("cascade_sessions_open") == 0)
        #expect(initial.value("cascade_registrations_total") == 0)
        #expect(initial.sum("cascade_tls_handshakes_total") == 0)

        let ops = try CoordinatorFixture.client(fixture.pki, address, uri: "cascade://operator/alice")
        defer { ops.close() }
        let release = try fixture.release("1.1", size: 300_000)
        try await fixture.push(release, via: ops)
        for _ in 0..<5 { _ = try await ops.unary(OperatorService.listClusters, ListClustersRequest()) }
        // A method nobody serves is counted as "unknown", whatever it is called.
        let invented = RPCMethod<ListClustersRequest, ListClustersResponse>("cascade.Operator/Invented", allowedRoles: [.operator])
        await #expect(throws: RPCError.self) { try await ops.unary(invented, ListClustersRequest()) }

        // Three agents in one cluster; the first leads.
        var agents: [FakeAgent] = []
        for (id, cpu) in [("a1-01", 0.9), ("a1-02", 0.5), ("a1-03", 0.7)] {
            let agent = try FakeAgent(pki: fixture.pki, coordinator: address, id: id, address: "127.0.1.\(agents.count + 11)")
            _ = try await agent.register(cpu: cpu)
            try await agent.connect()
            agents.append(agent)
        }
        defer { for agent in agents { agent.disconnect() } }
        // An agent may not call operator methods.
        for _ in 0..<2 {
            await #expect(throws: RPCError.self) { try await agents[1].client.unary(OperatorService.listAgents, ListAgentsRequest()) }
        }
        // Three clients with a certificate from another CA (they trust ours, so the coordinator
        // is the side that refuses), and one connection that closes without a handshake.
        let stranger = try TestPKI(name: "another CA")
        let foreign = try TLSContext(
            configuration: stranger.configuration(uri: "cascade://operator/mallory", trusting: fixture.pki.caFile), side: .client)
        for _ in 0..<3 {
            if let connection = try? await foreign.connect(to: address) { await connection.close() }
        }
        let bare = try await Socket.connect(to: address, on: EventLoopGroup.shared.next())
        bare.close()

        let id = try await ops.unary(OperatorService.startRollout, StartRolloutRequest(
            releaseVersion: "1.1", policy: RolloutPolicy(maxUnavailable: 1))).rolloutID
        _ = try await agents[0].instruction("the cluster order") { $0.clusterRollout?.rolloutID == id }
        // A member fetches the release from the coordinator (as after a bad chunk from its leader).
        let fetched = try await fetchAll(agents[1].client, "1.1")
        #expect(fetched == release.bytes)
        _ = try await agents[1].client.unary(CoordinatorService.reportFault, FaultReport(
            rolloutID: id, sourceID: "a1-01", releaseVersion: "1.1", chunkIndex: 2, leaderEpoch: 1, detail: "hash mismatch"))
        // Reports: a1-02 goes all the way, a1-03 starts downloading; 6 reports in all.
        upgrade(agents[1], rollout: id)
        agents[2].report(.instructed, rollout: id)
        agents[2].report(.downloading, rollout: id, bytes: 65_536)
        let reportsSent = 6.0

        let clock = ContinuousClock()
        let scraped = try await scrapeUntil(coordinator.metrics, "every report and the rollout's progress") { scrape in
            scrape.value("cascade_heartbeats_total") == reportsSent
                && scrape.sum("cascade_tls_handshakes_total", matching: ["outcome": "refused"]) == 4
                && scrape.value("cascade_rollout_agents", ["rollout": "\(id)", "state": "healthy"]) == 1
                && scrape.value("cascade_rollout_agents", ["rollout": "\(id)", "state": "downloading"]) == 1
        }
        let started = clock.now
        let (final, text) = try await scrape(coordinator.metrics)
        let took = clock.now - started
        print("coordinator scrape: \(text.utf8.count) bytes, \(final.order.count) families, \(final.families.values.reduce(0) { $0 + $1.samples.count }) samples, in \(took)")

        for scrape in [scraped, final] {
            #expect(scrape.value("cascade_sessions_open") == 3)
            #expect(scrape.value("cascade_registrations_total") == 3)
            #expect(scrape.value("cascade_agents", ["session": "connected"]) == 3)
            #expect(scrape.value("cascade_clusters") == 1)
            // Handshakes: the foreign certificates by their reason; the bare connection too.
            #expect(scrape.value("cascade_tls_handshakes_total", ["outcome": "refused", "reason": "unknown_ca"]) == 3,
                    "\(scrape.samples("cascade_tls_handshakes_total"))")
            #expect(scrape.sum("cascade_tls_handshakes_total", matching: ["outcome": "refused"]) == 4)
            // The operator's client and the three agents' clients each did one full handshake.
            #expect(scrape.sum("cascade_tls_handshakes_total", matching: ["outcome": "accepted"]) == 4)
            // Calls, by what the test made.
            func calls(_ method: String, _ code: String) -> Double? {
                scrape.value("cascade_rpc_calls_total", ["method": method, "code": code])
            }
            #expect(calls("cascade.Operator/ListClusters", "OK") == 5)
            #expect(calls("cascade.Operator/PushRelease", "OK") == 1)
            #expect(calls("cascade.Operator/StartRollout", "OK") == 1)
            #expect(calls("cascade.Operator/ListAgents", "PERMISSION_DENIED") == 2)
            #expect(calls("unknown", "UNIMPLEMENTED") == 1)
            #expect(calls("cascade.Coordinator/Register", "OK") == 3)
            #expect(calls("cascade.Coordinator/FetchChunks", "OK") == 1)
            #expect(calls("cascade.Coordinator/ReportFault", "OK") == 1)
            // Sessions are still open: not ended, so not counted yet.
            #expect(calls("cascade.Coordinator/Session", "OK") == nil)
            #expect(scrape.value("cascade_rpc_call_duration_seconds_count", ["method": "cascade.Operator/ListClusters"]) == 5)
            #expect(!scrape.samples("cascade_rpc_calls_total").contains { $0.labels["method"]?.contains("Invented") == true })
            // Bytes per release: what was pushed, and what the member fetched.
            #expect(scrape.value("cascade_release_bytes_received_total", ["release": "1.1"]) == Double(release.bytes.count))
            #expect(scrape.value("cascade_release_bytes_served_total", ["release": "1.1"]) == Double(fetched.count))
            #expect(scrape.value("cascade_chunk_verification_failures_total", ["source": "leader"]) == 1)
            #expect(scrape.value("cascade_chunk_verification_failures_total", ["source": "store"]) == 0)
            #expect(scrape.value("cascade_heartbeats_total") == reportsSent)
            // The rollout: running, one agent per state the reports put it in.
            #expect(scrape.value("cascade_rollout_state", ["rollout": "\(id)", "release": "1.1", "state": "running"]) == 1)
            #expect(scrape.sum("cascade_rollout_state", matching: ["rollout": "\(id)"]) == 1)
            #expect(scrape.sum("cascade_rollout_agents", matching: ["rollout": "\(id)"]) == 3)
            #expect((scrape.value("cascade_store_transaction_duration_seconds_count", ["outcome": "commit"]) ?? 0) > 0)
            #expect((scrape.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
            #expect((scrape.value("process_open_fds") ?? 0) >= 10)
            #expect((scrape.value("process_cpu_seconds_total") ?? -1) >= 0)
        }
        // Leader changes: as many as the audit log recorded.
        let events = try await ops.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events
        let leaderEvents = events.filter { $0.kind == "cluster.leader-changed" }.count
        #expect(leaderEvents >= 1)
        #expect(final.value("cascade_leader_changes_total") == Double(leaderEvents))
        // The status page is on the same listener, and scraping counted its own responses.
        #expect(try await HTTPTestClient.get(coordinator.status ?? address, "/status.json").status == 200)
        let after = try await scrape(coordinator.metrics).scrape
        #expect((after.value("cascade_http_responses_total", ["code": "200"]) ?? 0) >= 3)
        try await promtoolCheck(text, "the coordinator's scrape")
        // README lists every family the coordinator serves.
        let readme = try String(contentsOfFile: repositoryFile("README.md"), encoding: .utf8)
        for family in final.order { #expect(readme.contains("`\(family)`"), "README does not list \(family)") }
    }

    @Test("--metrics-listen and --status-listen: a bad address is a usage error (exit 2); off by default; a bare port is loopback; a non-loopback address is served with a warning in the log")
    func listenFlags() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        for (flag, value) in [("--metrics-listen", "nowhere"), ("--status-listen", "70000"), ("--metrics-listen", "10.0.0.300:9400")] {
            let bad = try CoordinatorProcess.launch(fixture, data: fixture.data.file("bad-\(value)"), mergeStandardError: true, extra: [flag, value])
            #expect(try await bad.exitStatus() == 2, "\(flag) \(value)")
            #expect(bad.lines.first?.hasPrefix("cascade-coordinator: \(flag): ") == true, "\(bad.lines)")
        }
        // Off by default: no view lines, nothing else listening.
        let plain = try await CoordinatorProcess.start(fixture, data: fixture.data.file("plain"))
        defer { plain.process.kill9() }
        let listening = try await plain.process.line(startingWith: "cascade-coordinator: listening on ")
        #expect(!plain.process.lines.contains { $0.contains("http://") }, "\(listening)")
        // A bare port: loopback. Picked free first (the test cannot ask for port 0 and a bare port at once).
        let probe = try TCPListener(bindingTo: try SocketAddress(ip: "127.0.0.1", port: 0))
        let port = probe.localAddress.port
        probe.close()
        let bare = try await ViewedCoordinator.start(fixture, data: fixture.data.file("bare"), metrics: "\(port)", status: nil)
        defer { bare.process.process.kill9() }
        #expect(bare.metrics == (try SocketAddress(ip: "127.0.0.1", port: port)))
        #expect(try await HTTPTestClient.get(try #require(bare.metrics), "/metrics").status == 200)
        // Every address of the host: served, and the log says it is open to the network.
        let wide = try await ViewedCoordinator.start(fixture, data: fixture.data.file("wide"), metrics: nil, status: "0.0.0.0:0")
        defer { wide.process.process.kill9() }
        let statusPort = try #require(wide.status?.port)
        #expect(try await HTTPTestClient.get(try SocketAddress(ip: "127.0.0.1", port: statusPort), "/status.json").status == 200)
        _ = try await waitUntil(within: .seconds(10), "the warning in the log") {
            wide.process.process.standardError.contains(" warning cascade-coordinator[\(wide.process.process.pid)] coordinator: status page on http://0.0.0.0:\(statusPort)/ is reachable from the network without TLS or authentication") ? true : nil
        }
    }

    @Test("the status page: every cluster and agent in Chromium's DOM, agent-controlled text never markup, a strict CSP, a screenshot (skipped without chromium)")
    func statusPage() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        // Separate listeners: metrics on 127.0.0.2, the page on 127.0.0.1.
        let coordinator = try await ViewedCoordinator.start(fixture, data: fixture.data.file("page"), metrics: "127.0.0.2:0", status: "127.0.0.1:0")
        defer { coordinator.process.process.kill9() }
        let status = try #require(coordinator.status)
        #expect(coordinator.metrics != coordinator.status)
        #expect(try await HTTPTestClient.get(status, "/metrics").status == 404)
        #expect(try await HTTPTestClient.get(try #require(coordinator.metrics), "/").status == 404)
        let address = coordinator.process.address
        let ops = try CoordinatorFixture.client(fixture.pki, address, uri: "cascade://operator/alice")
        defer { ops.close() }
        try await fixture.push(try fixture.release("1.1"), via: ops)

        // Three clusters of three; a fourth with one agent that registers hostile versions.
        var agents: [FakeAgent] = []
        for subnet in 1...3 {
            for (index, cpu) in [0.9, 0.6, 0.4].enumerated() {
                let agent = try FakeAgent(pki: fixture.pki, coordinator: address, id: "a\(subnet)-0\(index + 1)", address: "127.0.\(subnet).\(index + 11)")
                _ = try await agent.register(cpu: cpu)
                try await agent.connect()
                agents.append(agent)
            }
        }
        defer { for agent in agents { agent.disconnect() } }
        let script = "<script>alert(1)</script>"
        let escape = "\u{1B}[31mred\u{1B}]0;title\u{07}"
        let hostile = try FakeAgent(pki: fixture.pki, coordinator: address, id: "x4-01", address: "127.0.4.11")
        defer { hostile.disconnect() }
        let hostileAccepted: Bool
        do {
            _ = try await hostile.client.unary(CoordinatorService.register, RegisterRequest(
                address: "127.0.4.11", memberPort: 7401, mainVersion: "1.0" + script, upgraderVersion: "1.0" + escape,
                idle: IdleRatios(cpu: 0.5, memory: 0.5)))
            try await hostile.connect()
            hostileAccepted = true
        } catch let error as RPCError {
            // A coordinator that validates versions where they enter refuses them: also safe.
            print("the coordinator refused the hostile versions at registration: \(error)")
            hostileAccepted = false
        }

        let id = try await ops.unary(OperatorService.startRollout, StartRolloutRequest(
            releaseVersion: "1.1", policy: RolloutPolicy(maxUnavailable: 2, maxParallelClusters: 2))).rolloutID
        // Cluster 1 nearly done, cluster 2 downloading; the rollout keeps running.
        _ = try await agents[0].instruction("cluster 1's order") { $0.clusterRollout?.rolloutID == id }
        _ = try await agents[3].instruction("cluster 2's order") { $0.clusterRollout?.rolloutID == id }
        upgrade(agents[1], rollout: id)
        upgrade(agents[2], rollout: id)
        agents[4].report(.instructed, rollout: id)
        agents[4].report(.downloading, rollout: id, bytes: 100_000)
        // An event detail an agent wrote, with markup and escape sequences in it.
        let detail = "bad chunk " + script + " " + escape + " & more"
        _ = try await agents[4].client.unary(CoordinatorService.reportFault, FaultReport(
            rolloutID: id, sourceID: "", releaseVersion: "1.1", chunkIndex: 1, leaderEpoch: 1, detail: detail))
        _ = try await waitUntilStatus(ops, id) { status in
            status.agents.filter { $0.progress.state == .healthy }.count == 2
                && status.agents.contains { $0.agentID == "a2-02" && $0.progress.state == .downloading }
        }

        // /status.json: everything is there, and nothing in it is markup or a raw control character.
        let json = try await HTTPTestClient.get(status, "/status.json")
        #expect(json.status == 200)
        #expect(json.headers["content-type"] == "application/json; charset=utf-8")
        #expect(json.headers["x-content-type-options"] == "nosniff")
        #expect(!json.body.contains(UInt8(ascii: "<")) && !json.body.contains(UInt8(ascii: ">")) && !json.body.contains(UInt8(ascii: "&")))
        #expect(!json.body.contains(0x1B) && !json.body.contains(0x07))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.body)) as? [String: Any])
        let clusters = try #require(document["clusters"] as? [[String: Any]])
        let prefixes = clusters.compactMap { $0["prefix"] as? String }
        let expectedPrefixes = ["127.0.1.0/24", "127.0.2.0/24", "127.0.3.0/24"] + (hostileAccepted ? ["127.0.4.0/24"] : [])
        #expect(prefixes == expectedPrefixes)
        let listed = clusters.flatMap { ($0["agents"] as? [[String: Any]]) ?? [] }
        let ids = Set(listed.compactMap { $0["id"] as? String })
        #expect(ids == Set(agents.map(\.id) + (hostileAccepted ? ["x4-01"] : [])))
        #expect(clusters.first?["leader"] as? String == "a1-01")
        if hostileAccepted {
            let row = try #require(listed.first { $0["id"] as? String == "x4-01" })
            #expect(row["main_version"] as? String == "1.0" + script)
            #expect(row["upgrader_version"] as? String == "1.0" + escape)
        }
        let rollouts = try #require(document["rollouts"] as? [[String: Any]])
        #expect(rollouts.count == 1)
        #expect(rollouts.first?["state"] as? String == "running")
        let events = try #require(document["events"] as? [[String: Any]])
        // Kept as the coordinator stores agents' free text: control characters already replaced.
        let stored = AgentText.freeText(detail, limit: 512)
        #expect(events.contains { ($0["detail"] as? String)?.contains(stored) == true })

        // The page: self-contained, and a policy that allows only its own inline script and style.
        let page = try await HTTPTestClient.get(status, "/")
        #expect(page.status == 200)
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        let policy = try #require(page.headers["content-security-policy"])
        for directive in ["default-src 'none'", "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"] {
            #expect(policy.contains(directive), "\(directive) in \(policy)")
        }
        #expect(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval") && !policy.contains("*"))
        let html = page.text
        for external in ["http://", "https://", "src=", "href=", "@import", "url(", "<link", "<iframe", "innerHTML", "insertAdjacentHTML", "document.write"] {
            #expect(!html.contains(external), "the page contains \(external)")
        }
        // The hashes in the policy are those of the inline script and style, so a browser runs them.
        for (open, close, directive) in [("<script>", "</script>", "script-src"), ("<style>", "</style>", "style-src")] {
            let body = try #require(html.range(of: open).flatMap { start in html.range(of: close, range: start.upperBound..<html.endIndex).map { html[start.upperBound..<$0.lowerBound] } })
            let hash = "sha256-" + Data(SHA256.hash(Array(body.utf8)).bytes).base64EncodedString()
            #expect(policy.contains("\(directive) '\(hash)'"), "\(directive) does not name the inline element's hash \(hash)")
        }

        // A real browser: the DOM after the page fetched /status.json, and a screenshot.
        guard let chromium = ExternalTool.find(["chromium", "chromium-browser", "google-chrome"]) else {
            print("skipped the browser check: chromium is not installed (Debian package chromium; `make deps TEST_TOOLS=1` installs it as root)")
            return
        }
        let profile = try TemporaryDirectory(prefix: "cascade-chromium")
        let common = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
                      "--user-data-dir=\(profile.path)", "--virtual-time-budget=10000"]
        let url = "http://\(status)/"
        let dumped = try await ExternalTool.run(chromium, common + ["--dump-dom", url], within: .seconds(120))
        #expect(dumped.status == 0, "chromium --dump-dom: \(dumped.errors.suffix(2000))")
        let dom = dumped.output
        #expect(dom.contains("data-generated-at="), "the page never rendered /status.json: \(dom.prefix(3000))")
        for prefix in expectedPrefixes { #expect(dom.contains("data-cluster=\"\(prefix)\""), "cluster \(prefix) is not in the DOM") }
        for agent in agents { #expect(dom.contains("data-agent=\"\(agent.id)\""), "agent \(agent.id) is not in the DOM") }
        #expect(dom.contains("data-rollout=\"\(id)\""))
        for prefix in ["127.0.1.0/24", "127.0.2.0/24"] { #expect(dom.contains("data-progress-cluster=\"\(prefix)\"")) }
        // Agent-controlled text is text: the markup is escaped by the DOM, control characters shown as \xNN.
        #expect(dom.components(separatedBy: "<script").count == 2, "a script element other than the page's own")
        #expect(!dom.contains("\u{1B}") && !dom.contains("\u{07}"))
        #expect(dom.contains("bad chunk &lt;script&gt;alert(1)&lt;/script&gt; \u{FFFD}[31mred\u{FFFD}]0;title\u{FFFD} &amp; more"), "\(dom.prefix(4000))")
        if hostileAccepted {
            #expect(dom.contains("1.0&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(dom.contains("1.0\\x1b[31mred"))
        }
        let directory = try ExternalTool.outputDirectory()
        let screenshot = directory + "/status-page.png"
        try? FileManager.default.removeItem(atPath: screenshot)
        let shot = try await ExternalTool.run(chromium, common + ["--window-size=1400,1100", "--screenshot=\(screenshot)", url], within: .seconds(120))
        #expect(shot.status == 0, "chromium --screenshot: \(shot.errors.suffix(2000))")
        let size = (try? FileManager.default.attributesOfItem(atPath: screenshot)[.size] as? Int) ?? 0
        #expect(size > 10_000, "no screenshot at \(screenshot)")
        print("status page screenshot: \(screenshot) (\(size) bytes)")
    }
}
