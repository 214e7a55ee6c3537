import CascadeAPI
import CascadeLog
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Foundation
@testable import CascadeAgentRuntime

/// Every install in a test, in order, across agents.
final class InstallLog: Sendable {
    struct Entry: Sendable, Hashable {
        let agent: String
        let version: String
        let sha256: SHA256Digest
        /// The artifact carried the runtime's in-flight lock when it was handed over (the mark
        /// the agent's prunes and `cascade-agent gc` leave alone).
        var markedInFlight = true
        /// The health timeout the runtime handed the installer (the rollout's).
        var healthTimeout: Duration?
    }

    let entries = Locked<[Entry]>([])

    func installs(of agent: String) -> [Entry] { entries.value.filter { $0.agent == agent } }
    func position(of agent: String) -> Int? { entries.value.firstIndex { $0.agent == agent } }
}

/// Records installs in memory; can be held closed to keep an agent in `installing`.
final class MemoryInstaller: ReleaseInstaller {
    let agent: String
    let log: InstallLog
    let open = Locked(true)
    let opened = ChangeSignal()

    init(agent: String, log: InstallLog) {
        self.agent = agent
        self.log = log
    }

    func setOpen(_ value: Bool) {
        open.withLock { $0 = value }
        opened.notify()
    }

    func install(artifact path: String, manifest: Manifest) async throws -> InstallOutcome {
        try await install(artifact: path, manifest: manifest, healthTimeout: nil)
    }

    func install(artifact path: String, manifest: Manifest, healthTimeout: Duration?) async throws -> InstallOutcome {
        while true {
            let seen = opened.generation
            if open.value { break }
            await opened.wait(after: seen)
        }
        let bytes = FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
        let marked = isLockedByAnyone(path)
        log.entries.withLock {
            $0.append(.init(agent: agent, version: manifest.version, sha256: SHA256.hash(bytes), markedInFlight: marked,
                            healthTimeout: healthTimeout))
        }
        return .running(version: manifest.version)
    }
}

/// Whether an open-file-description lock is held on `path` (tested through a fresh open file,
/// which conflicts with any other, in this process or another).
func isLockedByAnyone(_ path: String) -> Bool {
    let fd = open(path, O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var request = flock()
    request.l_type = Int16(F_WRLCK)
    request.l_whence = Int16(SEEK_SET)
    let ofdGetLock: Int32 = 36  // F_OFD_GETLK; Glibc exposes it only under _GNU_SOURCE
    guard fcntl(fd, ofdGetLock, &request) == 0 else { return false }
    return request.l_type != Int16(F_UNLCK)
}

/// Tracks how many agents are in flight (instructed, downloading, installing) at once, from
/// the agents' own progress events.
final class InFlightTracker: Sendable {
    private let state = Locked<(current: [String: AgentRolloutState], peak: Int)>(([:], 0))

    func record(_ agent: String, _ progress: AgentProgress) {
        state.withLock { state in
            state.current[agent] = progress.state
            let inFlight = state.current.values.filter(RolloutPacer.isInFlight).count
            state.peak = max(state.peak, inFlight)
        }
    }

    var peak: Int { state.value.peak }
}

/// A PKI, a release key, a fake coordinator and the agents of one test.
final class Fleet: Sendable {
    let pki: TestPKI
    let releaseKey: Ed25519PrivateKey
    let release: TestRelease
    let coordinator: FakeCoordinator
    let installs = InstallLog()
    let tracker = InFlightTracker()
    let subnet: String
    let root: TemporaryDirectory
    let agents = Locked<[String: RunningAgent]>([:])

    struct RunningAgent: Sendable {
        let runtime: AgentRuntime
        let installer: MemoryInstaller
        let task: Task<Void, any Error>
    }

    /// `subnet` like "127.0.21": agents bind 127.0.21.<n>, the coordinator 127.0.21.250.
    init(subnet: String, members: [String], leader: String, size: Int = 40 * 16 * 1024, chunkSize: UInt32 = 16 * 1024) throws {
        pki = try TestPKI()
        releaseKey = try Ed25519PrivateKey.generate()
        release = try TestRelease(version: "1.1.0", size: size, chunkSize: chunkSize, key: releaseKey)
        coordinator = try FakeCoordinator(pki: pki, ip: "\(subnet).250", release: release, members: members, leader: leader)
        self.subnet = subnet
        root = try TemporaryDirectory(prefix: "cascade-runtime")
    }

    var chunkSize: UInt64 { UInt64(release.manifest.chunkSize) }
    var size: UInt64 { release.manifest.size }

    @discardableResult
    func start(
        _ id: String, host: Int, idle: IdleRatios = IdleRatios(cpuPPM: 500_000, memoryPPM: 500_000),
        faults: AgentRuntimeConfiguration.FaultSwitches = .none, installerOpen: Bool = true, version: String = "1.0.0"
    ) throws -> AgentRuntime {
        let installer = MemoryInstaller(agent: id, log: installs)
        installer.setOpen(installerOpen)
        let tracker = self.tracker
        let configuration = AgentRuntimeConfiguration(
            coordinatorAddress: coordinator.address, bindAddress: "\(subnet).\(host)",
            tls: try pki.configuration(uri: "cascade://agent/\(id)", name: "\(id)-\(UInt32.random(in: 0...UInt32.max))"),
            releaseKeys: [releaseKey.publicKey], stateDirectory: root.file(id), mainVersion: version,
            upgraderVersion: "1.0.0", defaultReportInterval: .milliseconds(200), idleOverride: idle,
            retryBackoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200)),
            startJitter: .milliseconds(20), faults: faults,
            onEvent: { event in
                if case .progress(let progress) = event { tracker.record(id, progress) }
            },
            // CASCADE_TEST_LOG=1 shows what the agents did, when a test needs explaining.
            logger: Logger("fleet", output: ProcessInfo.processInfo.environment["CASCADE_TEST_LOG"] != nil
                ? LogOutput(program: id, level: .debug) { _, line in print(line) } : .discarding))
        let runtime = try AgentRuntime(configuration: configuration, installer: installer)
        let task = Task { try await runtime.run() }
        agents.withLock { $0[id] = RunningAgent(runtime: runtime, installer: installer, task: task) }
        return runtime
    }

    func runtime(_ id: String) -> AgentRuntime { agents.value[id]!.runtime }
    func installer(_ id: String) -> MemoryInstaller { agents.value[id]!.installer }

    func stop(_ id: String) async throws {
        guard let agent = agents.withLock({ $0.removeValue(forKey: id) }) else { return }
        await agent.runtime.shutdown()
        try await agent.task.value
    }

    func stopAll() async {
        await withTaskGroup(of: Void.self) { group in
            for id in agents.value.keys { group.addTask { try? await self.stop(id) } }
        }
        await coordinator.stop()
    }

    /// Starts `ids` on hosts 1, 2, ... (the first leads), waits for their sessions and for every
    /// member to have joined the leader.
    func startJoined(_ ids: [String]) async throws {
        for (index, id) in ids.enumerated() { try start(id, host: index + 1) }
        for id in ids { try await waitForSession(id) }
        let leader = ids[0], members = ids.count - 1
        _ = try await waitUntil(within: .seconds(10), "\(members) members to join \(leader)") {
            runtime(leader).leader.value.sessions.count == members ? true : nil
        }
    }

    /// Waits until `id` holds its coordinator session (and so has its assignment).
    func waitForSession(_ id: String) async throws {
        _ = try await waitUntil(within: .seconds(10), "\(id) to hold its coordinator session") {
            coordinator.state.value.agents[id]?.sessionOpen == true && runtime(id).status.epoch > 0 ? true : nil
        }
    }

    func waitForState(_ id: String, _ state: AgentRolloutState, within limit: Duration = .seconds(20)) async throws {
        _ = try await waitUntil(within: limit, "\(id) to be \(state)") {
            runtime(id).status.progress?.state == state ? true : nil
        }
    }
}
