import CascadeAPI
import CascadeLog
import CascadeAgentRuntime
import CascadeCrypto
import CascadeNet
import CascadeRPC
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Installs by recording the version: no process is restarted. The staged file is truncated
/// once installed, so 1,000 × the release never sits in the state directory (a tmpfs by
/// default) at once; nothing reads it after the install.
final class SimInstaller: ReleaseInstaller {
    let count = Atomic<Int>(0)
    /// What a real upgrader would run after the install (the simulation upgrades both at once).
    let upgraderVersion: Mutex<String>

    init(version: String) {
        upgraderVersion = Mutex(version)
    }

    func install(artifact path: String, manifest: Manifest) async throws -> InstallOutcome {
        _ = truncate(path, 0)
        count.add(1, ordering: .relaxed)
        upgraderVersion.withLock { $0 = manifest.version }
        return .running(version: manifest.version)
    }
}

/// One simulated agent's identity and place: id a<subnet>-<k>, address 127.0.<subnet>.<k+10>.
struct SimAgentSpec: Sendable {
    let id: String
    let subnet: Int
    let index: Int
    var ip: String { "127.0.\(subnet).\(index + 10)" }
    var isLeader: Bool { index == 0 }

    /// Agents spread round-robin over subnets 1...subnets.
    static func fleet(agents: Int, subnets: Int) throws -> [SimAgentSpec] {
        guard subnets >= 1, subnets <= 250, agents >= subnets else { throw BenchError("need 1...250 subnets and at least one agent per subnet") }
        guard (agents + subnets - 1) / subnets <= 244 else { throw BenchError("at most 244 agents per subnet (127.0.s.10 ... 127.0.s.253)") }
        return (0..<agents).map { number in
            let subnet = number % subnets + 1, index = number / subnets
            return SimAgentSpec(id: "a\(subnet)-\(String(index + 1000).dropFirst())", subnet: subnet, index: index)
        }
    }

    /// The k=0 agent of each subnet is the idlest, so it leads; members differ so the sixth
    /// server is well defined too.
    var idle: IdleRatios {
        isLeader ? IdleRatios(cpu: 0.95, memory: 0.9) : IdleRatios(cpu: 0.3 + 0.05 * Double(index % 10), memory: 0.5)
    }
}

/// The in-process fleet: one AgentRuntime per agent, each with its own certificate, bind
/// address, member listener and mutual-TLS session to the coordinator.
final class SimFleet: Sendable {
    struct Member: Sendable {
        let spec: SimAgentSpec
        let runtime: AgentRuntime
        let installer: SimInstaller
        let task: Task<Void, any Error>
    }

    let members = Mutex<[Member]>([])
    let logLines = Atomic<Int>(0)
    let lastLogs = Mutex<[String]>([])

    func start(
        _ specs: [SimAgentSpec], tls: [String: TLSConfiguration], coordinator: SocketAddress, releaseKey: Ed25519PublicKey,
        stateRoot: String, version: String
    ) throws {
        for spec in specs {
            let installer = SimInstaller(version: version)
            var configuration = AgentRuntimeConfiguration(
                coordinatorAddress: coordinator, bindAddress: spec.ip, tls: tls[spec.id]!, releaseKeys: [releaseKey],
                stateDirectory: "\(stateRoot)/\(spec.id)", mainVersion: version, upgraderVersion: version,
                hostname: spec.id, idleOverride: spec.idle,
                logger: Logger("fleet", output: LogOutput(program: spec.id) { [weak self] _, line in self?.record(line) }))
            configuration.currentUpgraderVersion = { installer.upgraderVersion.withLock { $0 } }
            let runtime = try AgentRuntime(configuration: configuration, installer: installer)
            let task = Task { try await runtime.run() }
            members.withLock { $0.append(Member(spec: spec, runtime: runtime, installer: installer, task: task)) }
        }
    }

    /// Keeps a count and the last lines (shown when the run fails).
    private func record(_ line: String) {
        logLines.add(1, ordering: .relaxed)
        lastLogs.withLock { logs in
            logs.append(line)
            if logs.count > 40 { logs.removeFirst(logs.count - 40) }
        }
    }

    var statuses: [AgentRuntimeStatus] { members.withLock { $0 }.map(\.runtime.status) }
    var installs: Int { members.withLock { $0 }.reduce(0) { $0 + $1.installer.count.load(ordering: .relaxed) } }

    /// Waits until `ids` all hold their coordinator session (registered and reporting), and,
    /// for leaders, lead. Returns false on timeout.
    func waitUntilRegistered(_ ids: Set<String>, leaders: Bool, within limit: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let ready = members.withLock { $0 }.filter { ids.contains($0.spec.id) }.filter { member in
                let status = member.runtime.status
                return status.registrations > 0 && status.reportsSent > 0 && (!leaders || status.role == .leader)
            }.count
            if ready == ids.count { return true }
            try await Task.sleep(for: .milliseconds(100))  // polling statuses, bounded by the deadline
        }
        return false
    }

    func shutdown() async {
        let all = members.withLock { $0 }
        await withTaskGroup(of: Void.self) { group in
            for member in all {
                group.addTask {
                    await member.runtime.shutdown()
                    _ = try? await member.task.value
                }
            }
        }
    }
}
