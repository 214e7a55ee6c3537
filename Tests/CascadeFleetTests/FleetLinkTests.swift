import CascadeNet
import CascadeTestSupport
import Foundation
import Testing

/// "No silent failure": an agent whose fleet configuration does not work says so in its log and
/// in `cascade-agent status` (exit 1), keeps trying, and joins once the cause is fixed, without
/// a restart. Each case runs its own coordinator and one agent pair on loopback.
@Suite("Fleet link: misconfigurations are loud and retried")
struct FleetLinkTests {
    enum Misconfiguration: String, CaseIterable, CustomTestStringConvertible {
        case badCertificatePath, unknownKey, memberPortInUse, badMetricsListen
        var testDescription: String { rawValue }

        /// Each case its own agent id and address (they may run at once).
        var agent: (id: String, address: String) {
            switch self {
            case .badCertificatePath: ("link-cert", "127.0.3.11")
            case .unknownKey: ("link-key", "127.0.3.12")
            case .memberPortInUse: ("link-port", "127.0.3.13")
            case .badMetricsListen: ("link-metrics", "127.0.3.14")
            }
        }
    }

    @Test("a misconfigured agent: status exits 1 with the cause and the fix; fixed, it joins without a restart (status joined, exit 0)",
          arguments: Misconfiguration.allCases)
    func misconfigurationIsLoudAndRetried(_ fault: Misconfiguration) async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        let coordinator = try await fleet.startCoordinator()
        let (id, address) = fault.agent
        let node = try await fleet.addAgent(id, address: address, idleCPU: 0.9)
        let good = node.fleetConf
        var squatter: TCPListener?
        let expected: String
        switch fault {
        case .badCertificatePath:
            let cert = try #require(good.split(separator: "\n").first { $0.hasPrefix("cert = ") }).dropFirst("cert = ".count)
            try node.writeFleetConf(good.replacingOccurrences(of: "cert = \(cert)", with: "cert = \(cert).missing"))
            expected = "cert = \(cert).missing does not exist; fix the path of \"cert\""
        case .unknownKey:
            try node.writeFleetConf(good.replacingOccurrences(of: "coordinator = ", with: "coordinater = "))
            expected = "has the unknown key \"coordinater\"; did you mean \"coordinator\"?"
        case .memberPortInUse:
            let listener = try TCPListener(bindingTo: try SocketAddress(ip: address, port: 0))
            squatter = listener
            let port = listener.localAddress.port
            try node.writeFleetConf(good.replacingOccurrences(of: "member-port = 0", with: "member-port = \(port)"))
            expected = "member port \(port) on \(address) is in use by another process; free it or set another \"member-port\""
        case .badMetricsListen:
            try node.writeFleetConf(good + "\nmetrics-listen = nowhere\n")
            expected = "metrics-listen = nowhere is not PORT (loopback) or HOST:PORT"
        }
        try node.start()

        let (failing, line) = try await node.fleetLine(startingWith: "retrying:", fleet: fleet)
        #expect(failing == 1, "status exits non-zero while the agent is configured but not in the fleet")
        #expect(line.contains(expected), "\(line)")
        #expect(node.log.contains("not in the fleet: ") && node.log.contains(expected), "the log says what to fix\n\(node.log)")
        let mainBefore = try #require(node.pid("main"))

        // The fix: the file as it should be, or the port given back.
        switch fault {
        case .memberPortInUse: squatter?.close()
        default: try node.writeFleetConf(good)
        }
        let (joined, text) = try await node.fleetLine(startingWith: "joined", fleet: fleet)
        #expect(joined == 0)
        #expect(text.hasPrefix("joined coordinator \(coordinator) as "), "\(text)")
        #expect(node.pid("main") == mainBefore, "joined without a restart of the main program")
        _ = try await fleet.wait("the coordinator to list \(node.id) connected") {
            try await fleet.agentInfo(node.id).flatMap { $0.connected ? $0 : nil }
        }
        withExtendedLifetime(squatter) {}
    }

    @Test("a new release that cannot join the fleet is not healthy: the upgrader rolls it back and removes it")
    func releaseThatCannotJoinIsRolledBack() async throws {
        let fleet = try Fleet()
        defer { fleet.stop() }
        try await fleet.startCoordinator()
        let node = try await fleet.addAgent("link-upgrade", address: "127.0.3.21", idleCPU: 0.9, healthDeadline: 4)
        try node.start()
        _ = try await node.fleetLine(startingWith: "joined", fleet: fleet)

        // The running 1.0 has joined and does not read fleet.conf again; the next main program does.
        try node.writeFleetConf(node.fleetConf.replacingOccurrences(of: "coordinator = ", with: "coordinater = "))
        try FileManager.default.createDirectory(atPath: fleet.work.file("bundles"), withIntermediateDirectories: true)
        let bundle = try Bundles.make("1.2", in: fleet.work.file("bundles"), pad: [])
        let upgrade = try ChildProcess(try builtProduct("cascade-agent"), ["upgrade", "--root", node.root, "--timeout", "40", bundle])
        let (status, lines) = try await upgrade.finished(lastLine: "the main program: ", within: .seconds(60))
        #expect(status == 1, "\(lines)\n\(upgrade.standardError)\n\(node.log)")
        #expect(lines.contains { $0.hasPrefix("the main program: 1.2 rolled back") && $0.contains("did not report healthy") }, "\(lines)")
        #expect(node.version("main") == "1.0")
        #expect(node.releases("main") == ["1.0"], "the rolled-back release is removed")

        // The old release runs again, reads the same broken file, and says so.
        let (failing, line) = try await node.fleetLine(startingWith: "retrying:", fleet: fleet)
        #expect(failing == 1)
        #expect(line.contains("did you mean \"coordinator\""), "\(line)")
    }
}
