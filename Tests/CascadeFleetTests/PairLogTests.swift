import CascadeTestSupport
import Foundation
import Testing

/// Every non-empty line of `text`, each of which must be one JSON object.
func jsonLogLines(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { line in
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(line)")
    }
}

/// A text log line (README "Logs"): time, level, program[pid], component: message and fields.
var textLogLine: Regex<(Substring, Substring, Substring, Substring, Substring, Substring, Substring)> {
    #/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (debug|info|warning|error) ([a-z-]+)\[(\d+)\] ([a-z]+): (.*)$/#
}

/// The logs of a real agent pair (both programs write to one file, as under systemd) and of
/// the coordinator it joins.
@Suite("Agent pair logs (real processes)")
struct PairLogTests {
    @Test("log-format = json in agent.conf: every line both programs write is one JSON object with time, level, program, pid, component and message; fleet.conf names the coordinator by host name (localhost:PORT)")
    func jsonLines() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        let coordinator = try await fleet.startCoordinator(["--log-format", "json"])
        let node = try await fleet.addAgent("log-json", address: "127.0.4.21", idleCPU: 0.9, extraAgentConf: "log-format = json\nlog-level = debug")
        try node.writeFleetConf(node.fleetConf.replacingOccurrences(
            of: "coordinator = \(coordinator)", with: "coordinator = localhost:\(coordinator.port)"))
        try node.start()
        _ = try await fleet.wait("log-json to register", within: .seconds(60)) {
            try await fleet.agentInfo("log-json").flatMap { $0.connected ? $0 : nil }
        }
        let joined = try await fleet.wait("the join in the log") {
            try jsonLogLines(node.log).first { ($0["message"] as? String)?.hasPrefix("joining the fleet through ") == true }
        }
        // The name was resolved to the address the coordinator listens on.
        #expect(joined["message"] as? String == "joining the fleet through 127.0.0.1:\(coordinator.port) as 127.0.4.21 (member port \(try #require(node.fleetMemberPort(joined))))")
        #expect(joined["component"] as? String == "fleet")
        #expect(joined["program"] as? String == "cascade-agent")

        let lines = try jsonLogLines(node.log)
        var programs: Set<String> = []
        for line in lines {
            let time = line["time"] as? String ?? ""
            #expect(time.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#) != nil, "\(line)")
            #expect(["debug", "info", "warning", "error"].contains(line["level"] as? String ?? ""), "\(line)")
            #expect(line["pid"] is Int, "\(line)")
            #expect(!(line["component"] as? String ?? "").isEmpty, "\(line)")
            #expect(line["message"] is String, "\(line)")
            programs.insert(line["program"] as? String ?? "")
        }
        #expect(programs == ["cascade-upgrader", "cascade-agent"], "\(programs)")
        #expect(lines.contains { $0["program"] as? String == "cascade-upgrader" && ($0["message"] as? String)?.hasPrefix("started the main program (pid ") == true }, "\(node.log)")
        #expect(lines.contains { $0["component"] as? String == "main" && ($0["message"] as? String)?.hasPrefix("main program 1.0 running for ") == true })

        // The coordinator's own lines, all JSON too.
        let coordinatorLines = try jsonLogLines(fleet.coordinatorLog)
        #expect(coordinatorLines.allSatisfy { $0["program"] as? String == "cascade-coordinator" })
        #expect(coordinatorLines.contains { ($0["message"] as? String)?.hasPrefix("listening on ") == true })
    }

    @Test("an agent whose certificate expired: its log (text) and `cascade-agent status` say which certificate, since when and how to renew it; the coordinator's log says the same of the client it refused")
    func expiredAgentCertificate() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        let coordinator = try await fleet.startCoordinator()
        let address = "127.0.4.22"
        let node = try await fleet.addAgent("log-expired", address: address, idleCPU: 0.9)
        let now = Int64(Date().timeIntervalSince1970)
        let expired = try fleet.pki.configuration(
            uri: "cascade://agent/log-expired", name: "agent-log-expired-old", ipAddresses: [address],
            validFrom: now - 20 * 86_400, validUntil: now - 3 * 86_400)
        let conf = node.fleetConf.split(separator: "\n").map { line -> String in
            if line.hasPrefix("cert = ") { return "cert = \(expired.certificateChainFile)" }
            if line.hasPrefix("key = ") { return "key = \(expired.privateKeyFile)" }
            return String(line)
        }
        try node.writeFleetConf(conf.joined(separator: "\n") + "\n")
        try node.start()

        let (failing, line) = try await node.fleetLine(startingWith: "retrying:", fleet: fleet)
        #expect(failing == 1)
        let sentence = "cannot register: TLS with the coordinator at \(coordinator) failed: the server refused this program's certificate \(expired.certificateChainFile) (subject CN=agent-log-expired-old, cascade://agent/log-expired): it expired at "
        #expect(line.contains(sentence), "\(line)")
        #expect(line.contains("(3 days ago); renew it: certs/make-dev-certs.sh makes new development certificates"), "\(line)")

        // The agent's log: every line has the text shape; the refusal is a warning with its reason.
        let warning = try await fleet.wait("the agent's warning") {
            node.log.split(separator: "\n").first { $0.contains("coordinator link: TLS with the coordinator") }.map(String.init)
        }
        let match = try #require(warning.wholeMatch(of: textLogLine), "\(warning)")
        #expect(match.2 == "warning" && match.3 == "cascade-agent" && match.5 == "fleet")
        #expect(warning.contains("it expired at ") && warning.contains(" reason=expired"), "\(warning)")
        for other in node.log.split(separator: "\n") {
            #expect(String(other).wholeMatch(of: textLogLine) != nil, "\(other)")
        }

        // The coordinator's side.
        let refused = try await fleet.wait("the coordinator's warning") {
            fleet.coordinatorLog.split(separator: "\n").first { $0.contains(" tls: TLS handshake from \(address):") }.map(String.init)
        }
        #expect(refused.wholeMatch(of: textLogLine)?.2 == "warning", "\(refused)")
        #expect(refused.contains("failed: the client's certificate (subject CN=agent-log-expired-old, cascade://agent/log-expired) expired at "), "\(refused)")
        #expect(refused.contains("renew it") && refused.contains(" reason=expired") && refused.contains(" peer=\(address):"), "\(refused)")
        #expect(refused.contains(#"certificate="CN=agent-log-expired-old; cascade://agent/log-expired""#), "\(refused)")
    }
}

extension FleetNode {
    /// The member port a join line names ("... (member port 40123)").
    func fleetMemberPort(_ line: [String: Any]) -> Int? {
        guard let message = line["message"] as? String, let range = message.range(of: "(member port ") else { return nil }
        return Int(message[range.upperBound...].prefix { $0.isNumber })
    }
}
