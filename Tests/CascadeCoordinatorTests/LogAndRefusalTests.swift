import CascadeAPI
import CascadeAgentRuntime
import CascadeLog
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Foundation
import Synchronization
import Testing

/// The log lines of a real process, parsed.
enum LogLines {
    /// Every non-empty line of `text`, each of which must be one JSON object.
    static func json(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            return try #require(object as? [String: Any], "not a JSON object: \(line)")
        }
    }

    /// The shape of a text line (README "Logs"): time, level, program[pid], component: message.
    static var textLine: Regex<(Substring, Substring, Substring, Substring, Substring, Substring, Substring)> {
        #/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (debug|info|warning|error) ([a-z-]+)\[(\d+)\] ([a-z]+): (.*)$/#
    }

    static var rfc3339: Regex<Substring> { #/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/# }

    /// Checks the fixed fields of a JSON line of `program` (with pid `pid`, if given).
    static func checkShape(_ object: [String: Any], program: String, pid: Int32? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let time = object["time"] as? String ?? ""
        #expect(time.wholeMatch(of: rfc3339) != nil, "time \(time)", sourceLocation: sourceLocation)
        #expect(["debug", "info", "warning", "error"].contains(object["level"] as? String ?? ""), "\(object)", sourceLocation: sourceLocation)
        #expect(object["program"] as? String == program, "\(object)", sourceLocation: sourceLocation)
        if let pid { #expect(object["pid"] as? Int == Int(pid), "\(object)", sourceLocation: sourceLocation) }
        #expect(!(object["component"] as? String ?? "").isEmpty, "\(object)", sourceLocation: sourceLocation)
        #expect(object["message"] is String, "\(object)", sourceLocation: sourceLocation)
    }
}

@Suite("Coordinator logs and refusals (real processes)", .serialized)
struct LogAndRefusalTests {
    static let now = Int64(Date().timeIntervalSince1970)

    @Test("--log-format json: every line the real coordinator writes is one JSON object with time, level, program, pid, component and message; host names are resolved (--listen localhost:0, cascadectl --coordinator localhost:PORT); what an agent says is escaped and decodes back exactly")
    func jsonLogs() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let coordinator = try await CoordinatorProcess.start(
            fixture, data: fixture.data.file("json-data"), listen: "localhost:0", extra: ["--log-format", "json"])
        defer { coordinator.process.kill9() }
        #expect(coordinator.address.ipString == "127.0.0.1")

        // cascadectl resolves the name too.
        var ctl = try Ctl(fixture: fixture, uri: "cascade://operator/alice")
        ctl.common[1] = "localhost:\(coordinator.address.port)"
        let listed = try await ctl.run(["release", "list"])
        #expect(listed.status == 0, "\(listed)")

        // An agent reports "healthy" on a version full of terminal escapes and a newline while
        // it runs another: the coordinator logs the report as not recorded.
        let hostile = "1.1\u{1B}[2J\u{1B}[31mRED\nforged line\u{9B}0m"
        let agent = try FakeAgent(pki: fixture.pki, coordinator: coordinator.address, id: "h1", address: "127.0.0.1")
        defer { agent.disconnect() }
        _ = try await agent.register(cpu: 0.5)
        try await agent.connect()
        agent.send(AgentReport(
            heartbeat: Heartbeat(idle: IdleRatios(cpu: 0.5, memory: 0.5), mainVersion: "1.0", upgraderVersion: "1.0"),
            progress: AgentProgress(rolloutID: 1, state: .healthy, releaseVersion: hostile)))
        _ = try await waitUntil(within: .seconds(20), "the coordinator to log the hostile report") {
            coordinator.process.standardError.contains("reported healthy on") ? true : nil
        }

        let text = coordinator.process.standardError
        #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x9B }, "raw escapes in the log")
        let lines = try LogLines.json(text)
        #expect(lines.count >= 3)
        for line in lines { LogLines.checkShape(line, program: "cascade-coordinator", pid: coordinator.process.pid) }
        let listening = try #require(lines.first { ($0["message"] as? String)?.hasPrefix("listening on ") == true })
        #expect(listening["level"] as? String == "info")
        #expect(listening["component"] as? String == "coordinator")
        #expect(listening["address"] as? String == "\(coordinator.address)")
        #expect(lines.contains { ($0["message"] as? String)?.hasPrefix("open-file limit ") == true })
        let report = try #require(lines.first { ($0["message"] as? String)?.contains("reported healthy on") == true })
        #expect(report["level"] as? String == "warning")
        #expect(report["component"] as? String == "agents")
        #expect(report["message"] as? String == "h1 reported healthy on \(hostile) in rollout 1 while it runs 1.0; not recorded")
    }

    enum Failure: String, CaseIterable, CustomTestStringConvertible {
        case expired, notYetValid, unknownCA, noCascadeSAN, wrongRole, mismatchedKey
        var testDescription: String { rawValue }
    }

    @Test("each certificate failure: cascadectl's one sentence names the cause and the fix, and the coordinator's log line (text format) says the same with reason, peer and certificate",
          arguments: Failure.allCases)
    func certificateFailures(_ failure: Failure) async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let rogue = try TestPKI(name: "rogue CA")
        let coordinator = try await CoordinatorProcess.start(fixture, data: fixture.data.file("refusal-data"))
        defer { coordinator.process.kill9() }
        let address = "\(coordinator.address)"
        let tls: TLSConfiguration
        var ctlSays: [String]
        var logSays: [String]
        switch failure {
        case .expired:
            tls = try fixture.pki.configuration(uri: "cascade://operator/old", validFrom: Self.now - 30 * 86_400, validUntil: Self.now - 2 * 86_400)
            ctlSays = ["cascadectl: TLS with the coordinator at \(address) failed: the coordinator refused this program's certificate \(tls.certificateChainFile) (subject CN=operator-old, cascade://operator/old): it expired at ",
                       "(2 days ago); renew it: certs/make-dev-certs.sh makes new development certificates; in production, have the fleet CA issue a new one"]
            logSays = ["the client's certificate (subject CN=operator-old, cascade://operator/old) expired at ", "reason=expired", #"certificate="CN=operator-old; cascade://operator/old""#]
        case .notYetValid:
            tls = try fixture.pki.configuration(uri: "cascade://operator/early", validFrom: Self.now + 3 * 3600, validUntil: Self.now + 86_400)
            ctlSays = ["the coordinator refused this program's certificate \(tls.certificateChainFile) (subject CN=operator-early, cascade://operator/early): it is not valid until ",
                       "(in 3 hours); check the clocks of both hosts (date -u), or wait until then"]
            logSays = ["the client's certificate (subject CN=operator-early, cascade://operator/early) is not valid until ", "reason=not-yet-valid"]
        case .unknownCA:
            tls = try rogue.configuration(uri: "cascade://operator/mallory", trusting: fixture.pki.caFile)
            ctlSays = ["the coordinator does not trust the CA that issued this program's certificate \(tls.certificateChainFile) (subject CN=operator-mallory, cascade://operator/mallory): CN=rogue CA; use a certificate from the fleet CA"]
            logSays = ["the client's certificate (subject CN=operator-mallory, cascade://operator/mallory), issued by CN=rogue CA, is not from a CA in the trust bundle ", "reason=unknown-ca"]
        case .noCascadeSAN:
            tls = try fixture.pki.configuration(uri: nil, name: "operator-without-uri")
            ctlSays = ["the coordinator refused this program's certificate \(tls.certificateChainFile) (subject CN=operator-without-uri): it has no cascade://<role>/<id> URI in its subjectAltName",
                       "a Cascade certificate carries exactly one cascade://<role>/<id> URI"]
            logSays = ["the client's certificate (subject CN=operator-without-uri) has no cascade://<role>/<id> URI in its subjectAltName", "reason=no-identity", #"certificate="CN=operator-without-uri""#]
        case .wrongRole:
            tls = try fixture.pki.configuration(uri: "cascade://agent/a9")
            ctlSays = ["cascadectl: the coordinator refused the call: --cert \(tls.certificateChainFile) is the certificate of agent a9 (cascade://agent/a9), and cascadectl needs an operator's (cascade://operator/<id>); give --cert and --key of an operator certificate (agent a9 may not call cascade.Operator/ListReleases)"]
            logSays = [" access: permission denied: agent a9 may not call cascade.Operator/ListReleases (from 127.0.0.1:", "reason=permission-denied", "method=cascade.Operator/ListReleases", "peer=cascade://agent/a9"]
        case .mismatchedKey:
            var mixed = try fixture.pki.configuration(uri: "cascade://operator/alice")
            mixed.privateKeyFile = try fixture.pki.configuration(uri: "cascade://operator/bob").privateKeyFile
            tls = mixed
            ctlSays = ["cascadectl: the TLS files are not usable: the private key \(mixed.privateKeyFile) does not match the certificate \(mixed.certificateChainFile) (cascade://operator/alice): it is the key of another certificate; give the key that was made with this certificate, or the certificate issued for this key; check --ca, --cert and --key"]
            logSays = []
        }
        var ctl = try Ctl(fixture: fixture)
        ctl.common = ["--coordinator", address, "--ca", tls.trustRootsFile, "--cert", tls.certificateChainFile, "--key", tls.privateKeyFile, "--timeout", "10s"]
        let result = try await ctl.run(["release", "list"])
        #expect(result.status == 1, "\(result)")
        #expect(result.errorOutput.split(separator: "\n").count == 1, "one sentence: \(result)")
        for phrase in ctlSays { #expect(result.errorOutput.contains(phrase), "\(result.errorOutput)\nmissing: \(phrase)") }
        #expect(!result.errorOutput.contains("unavailable") && !result.errorOutput.contains("close_notify"), "\(result)")

        if failure == .mismatchedKey {
            // The server's side of a mismatched key: the coordinator refuses to start.
            let refused = try CoordinatorProcess.launch(
                fixture, data: fixture.data.file("mismatched-data"), mergeStandardError: true, tls: tls)
            #expect(try await refused.exitStatus() == 1)
            #expect(refused.lines.first == "cascade-coordinator: cannot start: the private key \(tls.privateKeyFile) does not match the certificate \(tls.certificateChainFile) (cascade://operator/alice): it is the key of another certificate; give the key that was made with this certificate, or the certificate issued for this key", "\(refused.lines)")
            return
        }
        let line = try await waitUntil(within: .seconds(20), "the coordinator's warning") {
            coordinator.process.standardError.split(separator: "\n").first { $0.contains(logSays[0]) }.map(String.init)
        }
        let match = try #require(line.wholeMatch(of: LogLines.textLine), "\(line)")
        #expect(match.2 == "warning")
        #expect(match.3 == "cascade-coordinator")
        #expect(match.4 == "\(coordinator.process.pid)")
        for phrase in logSays { #expect(line.contains(phrase), "\(line)\nmissing: \(phrase)") }
        if failure != .wrongRole {
            #expect(match.5 == "tls")
            #expect(line.contains("TLS handshake from 127.0.0.1:") && line.contains(" peer=127.0.0.1:"), "\(line)")
        }
        // Every line the coordinator wrote has the text shape.
        for other in coordinator.process.standardError.split(separator: "\n") {
            #expect(String(other).wholeMatch(of: LogLines.textLine) != nil, "\(other)")
        }
        if failure == .wrongRole {
            // The denial is in the audit log, with the caller as the actor.
            let ops = try CoordinatorFixture.client(fixture.pki, coordinator.address, uri: "cascade://operator/alice")
            defer { ops.close() }
            let denied = try await waitUntilAsync(within: .seconds(10), "the permission-denied event") {
                let events = try await ops.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events
                return events.first { $0.kind == "security.permission-denied" }
            }
            #expect(denied.actor == "agent a9", "\(denied)")
            #expect(denied.agentID == "a9")
            #expect(denied.detail.hasPrefix("cascade.Operator/ListReleases refused: agent a9 may not call cascade.Operator/ListReleases (from 127.0.0.1:"), "\(denied.detail)")
        }
    }

    @Test("a flood of refused handshakes and denied calls: at most 5 lines per reason per 10 s, then one 'suppressed K similar' line; denials audited at most 5 times plus one summary event")
    func rateLimited() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let coordinator = try await CoordinatorProcess.start(fixture, data: fixture.data.file("flood-data"), extra: ["--log-format", "json"])
        defer { coordinator.process.kill9() }

        // 30 calls from an agent to an operator method, on one connection.
        let agent = try CoordinatorFixture.client(fixture.pki, coordinator.address, uri: "cascade://agent/flooder")
        defer { agent.close() }
        for _ in 0..<30 {
            let error = await #expect(throws: RPCError.self) { _ = try await agent.unary(OperatorService.listReleases, ListReleasesRequest()) }
            #expect(error?.code == .permissionDenied)
        }
        // 30 handshakes with an expired certificate.
        let expired = try TLSContext(
            configuration: fixture.pki.configuration(uri: "cascade://operator/expired", validFrom: Self.now - 7200, validUntil: Self.now - 3600),
            side: .client)
        for _ in 0..<30 {
            do {
                let connection = try await expired.connect(to: coordinator.address)
                _ = try await connection.read(maxLength: 1)
            } catch {}
        }
        func lines() throws -> [[String: Any]] { try LogLines.json(coordinator.process.standardError) }
        let deniedKey = "agent cascade.Operator/ListReleases"
        // The summaries come when each window ends (10 s after its first line).
        let summaries = try await waitUntil(within: .seconds(30), "both summaries") { () -> [[String: Any]]? in
            let found = try lines().filter { ($0["message"] as? String)?.hasPrefix("suppressed ") == true }
            return found.count >= 2 ? found : nil
        }
        let all = try lines()
        let denials = all.filter { ($0["message"] as? String)?.hasPrefix("permission denied: agent flooder") == true }
        let refusals = all.filter { $0["reason"] as? String == "expired" && ($0["message"] as? String)?.hasPrefix("TLS handshake") == true }
        #expect(denials.count == 5, "\(denials)")
        #expect(refusals.count == 5, "\(refusals)")
        let deniedSummary = try #require(summaries.first { $0["reason"] as? String == deniedKey }, "\(summaries)")
        #expect(deniedSummary["message"] as? String == "suppressed 25 similar lines in the last 10s")
        #expect(deniedSummary["suppressed"] as? String == "25")
        #expect(deniedSummary["level"] as? String == "warning")
        let refusedSummary = try #require(summaries.first { $0["reason"] as? String == "expired" }, "\(summaries)")
        // Each handshake may be retried by nobody here: exactly 30 refusals, 25 held back.
        #expect(refusedSummary["suppressed"] as? String == "25", "\(refusedSummary)")

        let ops = try CoordinatorFixture.client(fixture.pki, coordinator.address, uri: "cascade://operator/alice")
        defer { ops.close() }
        let events = try await waitUntilAsync(within: .seconds(10), "the summary event") { () -> [Event]? in
            let found = try await ops.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events
                .filter { $0.kind == "security.permission-denied" }
            return found.count >= 6 ? found : nil
        }
        #expect(events.count == 6, "\(events)")
        #expect(events.filter { $0.agentID == "flooder" }.count == 5)
        let summary = try #require(events.first { $0.agentID.isEmpty })
        #expect(summary.detail.hasPrefix("25 more calls refused with PERMISSION_DENIED (\(deniedKey))"), "\(summary.detail)")
    }

    @Test("an agent given another role's certificate says so in its log (and its fleet link), not only 'permission denied'; the coordinator audits the denial")
    func agentWithOperatorCertificate() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let directory = try TemporaryDirectory(prefix: "cascade-wrong-role")
        let lines = Mutex<[String]>([])
        let failures = Mutex<[String]>([])
        let tls = try fixture.pki.configuration(uri: "cascade://operator/not-an-agent")
        let configuration = AgentRuntimeConfiguration(
            coordinatorAddress: fixture.address, bindAddress: "127.0.0.1", tls: tls,
            releaseKeys: [fixture.signingKey.publicKey], stateDirectory: directory.file("state"), mainVersion: "1.0",
            upgraderVersion: "1.0", retryBackoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200)),
            onEvent: { event in
                if case .coordinatorLinkFailed(let why) = event { failures.withLock { $0.append(why) } }
            },
            logger: Logger("fleet", output: LogOutput(program: "cascade-agent") { _, line in lines.withLock { $0.append(line) } }))
        let runtime = try AgentRuntime(configuration: configuration, installer: RecordingInstaller())
        let task = Task { try await runtime.run() }
        defer { task.cancel() }
        let why = try await waitUntil(within: .seconds(20), "the link failure") { failures.withLock { $0.first } }
        #expect(why == "the coordinator refused this agent's certificate \(tls.certificateChainFile): it is the certificate of operator not-an-agent "
            + "(cascade://operator/not-an-agent), and an agent needs one with the SAN URI cascade://agent/<id> (operator not-an-agent may not call cascade.Coordinator/Register)")
        let line = try #require(lines.withLock { $0 }.first { $0.contains("coordinator link: the coordinator refused this agent's certificate") })
        #expect(line.wholeMatch(of: LogLines.textLine)?.2 == "warning", "\(line)")
        #expect(line.hasSuffix(" reason=wrong-role"), "\(line)")
        await runtime.shutdown()
        let denied = try await waitUntilAsync(within: .seconds(10), "the permission-denied event") {
            try await fixture.operatorClient.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000)).events
                .first { $0.kind == "security.permission-denied" }
        }
        #expect(denied.actor == "operator not-an-agent", "\(denied)")
        #expect(denied.detail.hasPrefix("cascade.Coordinator/Register refused: operator not-an-agent may not call cascade.Coordinator/Register"), "\(denied.detail)")
    }
}
