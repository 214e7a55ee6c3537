import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A whole fleet on loopback for one fault test: the real `cascade-coordinator` binary on a data
/// directory that outlives it, and agent pairs (`cascade-upgrader` + `cascade-agent`), each in
/// an installed root of its own, in process groups of their own. `stop()` (also on deinit)
/// SIGKILLs every process the fleet started.
final class Fleet: Sendable {
    let pki: TestPKI
    let work: TemporaryDirectory
    /// The key the coordinator and the agents pin.
    let signingKey: Ed25519PrivateKey
    let releaseKeyFile: String
    /// A second key only the coordinator trusts (for "a key the agents don't pin").
    let coordinatorOnlyKey: Ed25519PrivateKey
    let coordinatorOnlyKeyFile: String
    let dataDirectory: String
    private let coordinatorTLS: TLSConfiguration
    private let coordinatorState = Mutex<(process: ChildProcess?, address: SocketAddress?)>((nil, nil))
    private let agentList = Mutex<[FleetNode]>([])
    private let operatorClient = Mutex<RPCClient?>(nil)

    init() throws {
        pki = try TestPKI(name: "fleet test CA")
        work = try TemporaryDirectory(prefix: "cascade-fleet")
        signingKey = try Ed25519PrivateKey.generate()
        releaseKeyFile = work.file("release.pub.pem")
        try signingKey.publicKey.pemRepresentation.write(toFile: releaseKeyFile, atomically: true, encoding: .utf8)
        coordinatorOnlyKey = try Ed25519PrivateKey.generate()
        coordinatorOnlyKeyFile = work.file("other-release.pub.pem")
        try coordinatorOnlyKey.publicKey.pemRepresentation.write(toFile: coordinatorOnlyKeyFile, atomically: true, encoding: .utf8)
        dataDirectory = work.file("coordinator")
        coordinatorTLS = try pki.configuration(uri: "cascade://coordinator/main", name: "coordinator")
    }

    deinit { stop() }

    /// SIGKILLs every agent and the coordinator, and closes the operator client.
    func stop() {
        for node in agentList.withLock({ $0 }) { node.kill() }
        operatorClient.withLock { $0?.close() }
        killCoordinator()
    }

    /// A failure message with everything a reader needs: the coordinator's log and each agent's.
    func diagnostics() -> String {
        var text = "--- coordinator stderr (tail)\n" + String(coordinatorLog.suffix(6000))
        for node in agentList.withLock({ $0 }) {
            text += "\n--- \(node.id) (\(node.address)) main \(node.version("main") ?? "?") log tail\n" + String(node.log.suffix(3000))
        }
        return text
    }

    var coordinatorLog: String { coordinatorState.withLock { $0.process?.standardError ?? "" } }

    /// The first line the running coordinator printed that starts with `prefix`.
    func coordinatorLine(startingWith prefix: String) async throws -> String {
        guard let process = coordinatorState.withLock({ $0.process }) else { throw TestFailure("the coordinator was never started") }
        return try await process.line(startingWith: prefix)
    }

    // MARK: - The coordinator

    /// Starts `cascade-coordinator` (port 0 the first time, the same address afterwards).
    @discardableResult
    func startCoordinator(_ extra: [String] = []) async throws -> SocketAddress {
        let listen = coordinatorState.withLock { $0.address.map { "\($0)" } } ?? "127.0.0.1:0"
        let process = try ChildProcess(try builtProduct("cascade-coordinator"), [
            "--data", dataDirectory, "--listen", listen, "--ca", coordinatorTLS.trustRootsFile,
            "--cert", coordinatorTLS.certificateChainFile, "--key", coordinatorTLS.privateKeyFile,
            "--trusted-key", releaseKeyFile, "--trusted-key", coordinatorOnlyKeyFile,
            "--engine-interval", "100ms", "--report-interval", "1s", "--liveness-timeout", "3s",
        ] + extra)
        coordinatorState.withLock { $0.process = process }
        let prefix = "cascade-coordinator: listening on "
        let line = try await process.line(startingWith: prefix, within: .seconds(60))
        let address = try SocketAddress(parsing: String(line.dropFirst(prefix.count).prefix { $0 != "," }))
        coordinatorState.withLock { $0.address = address }
        if operatorClient.withLock({ $0 }) == nil {
            let client = RPCClient(
                target: address, tls: try TLSContext(configuration: pki.configuration(uri: "cascade://operator/fault-suite"), side: .client),
                expectedRole: .coordinator, backoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(300)))
            operatorClient.withLock { $0 = client }
        }
        return address
    }

    /// kill -9 the coordinator and reap it.
    func killCoordinator() {
        guard let process = coordinatorState.withLock({ $0.process }) else { return }
        process.kill9()
        var status: Int32 = 0
        _ = waitpid(process.pid, &status, WNOHANG)
    }

    /// kill -9 the coordinator and wait until it is gone (its port is free again).
    func killCoordinatorAndWait() async throws {
        guard let process = coordinatorState.withLock({ $0.process }) else { return }
        process.kill9()
        _ = try await process.exitStatus(within: .seconds(30))
    }

    var coordinatorAddress: SocketAddress {
        get throws {
            guard let address = coordinatorState.withLock({ $0.address }) else { throw TestFailure("the coordinator was never started") }
            return address
        }
    }

    var ops: RPCClient {
        get throws {
            guard let client = operatorClient.withLock({ $0 }) else { throw TestFailure("the coordinator was never started") }
            return client
        }
    }

    // MARK: - Agents

    /// Installs 1.0 into a fresh root for agent `id` on `address` (not started yet).
    func addAgent(
        _ id: String, address: String, idleCPU: Double, healthDeadline: Double = 15, extraFleetConf: String = "",
        extraAgentConf: String = ""
    ) async throws -> FleetNode {
        let node = try FleetNode(
            fleet: self, id: id, address: address, idleCPU: idleCPU, healthDeadline: healthDeadline,
            extraFleetConf: extraFleetConf, extraAgentConf: extraAgentConf)
        agentList.withLock { $0.append(node) }
        try await node.install(bundle: try Bundles.shared().base)
        return node
    }

    var agents: [FleetNode] { agentList.withLock { $0 } }

    /// Starts `nodes` one by one, each only once the coordinator lists it connected, so the
    /// first of each subnet leads it.
    func startInOrder(_ nodes: [FleetNode]) async throws {
        for node in nodes {
            try node.start()
            _ = try await wait("\(node.id) to register", within: .seconds(60)) {
                try await self.agentInfo(node.id).flatMap { $0.connected ? $0 : nil }
            }
        }
    }

    func agentInfo(_ id: String) async throws -> AgentInfo? {
        try await ops.unary(OperatorService.listAgents, ListAgentsRequest()).agents.first { $0.agentID == id }
    }

    func cluster(_ prefix: String) async throws -> ClusterInfo? {
        try await ops.unary(OperatorService.listClusters, ListClustersRequest()).clusters.first { $0.prefix == prefix }
    }

    // MARK: - Releases and rollouts

    /// Signs `bundle` as `version` with `key` (the pinned one by default) and pushes it.
    @discardableResult
    func push(_ bundle: String, version: String, key: Ed25519PrivateKey? = nil) async throws -> ReleaseInfo? {
        let manifest = try ManifestBuilder(chunkSize: Bundles.chunkSize).build(fileAt: bundle, name: "cascade-agent", version: version)
        let signed = try SignedManifest.sign(manifest, with: key ?? signingKey)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: bundle)))
        let connection = try await ops.connection()
        let response = try await connection.clientStreaming(OperatorService.pushRelease) { writer in
            try await writer.write(PushReleaseRequest(signedManifest: signed))
            for index in 0..<manifest.chunkCount {
                let start = Int(manifest.offset(ofChunk: index))
                let data = Array(bytes[start..<start + manifest.size(ofChunk: index)])
                try await writer.write(PushReleaseRequest(chunk: Chunk(index: UInt32(index), data: data)))
            }
        }
        return response.release
    }

    func startRollout(_ version: String, _ policy: RolloutPolicy) async throws -> UInt64 {
        try await ops.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: version, policy: policy)).rolloutID
    }

    func rollout(_ id: UInt64) async throws -> RolloutStatus {
        try await ops.unary(OperatorService.getRollout, RolloutQuery(rolloutID: id, includeAgents: true))
    }

    /// Polls the rollout until `done` holds.
    @discardableResult
    func waitRollout(
        _ id: UInt64, _ what: String, within limit: Duration = .seconds(90), _ done: @escaping @Sendable (RolloutStatus) -> Bool
    ) async throws -> RolloutStatus {
        try await wait("rollout \(id): \(what)", within: limit) {
            let status = try await self.rollout(id)
            return done(status) ? status : nil
        }
    }

    /// Every event (oldest first).
    func events() async throws -> [Event] {
        var all: [Event] = []
        while true {
            let page = try await ops.unary(OperatorService.listEvents, ListEventsRequest(limit: 1000, afterID: all.last?.id ?? 0)).events
            all += page
            if page.count < 1000 { return all }
        }
    }

    /// The `rollout.agent-state` transitions of `agent` in rollout `id` ("pending → instructed", ...).
    func transitions(_ agent: String, rollout id: UInt64) async throws -> [String] {
        try await events().filter { $0.kind == "rollout.agent-state" && $0.rolloutID == id }
            .compactMap { event -> String? in
                let prefix = "agent \(agent): "
                guard event.detail.hasPrefix(prefix) else { return nil }
                return String(event.detail.dropFirst(prefix.count))
            }
    }

    /// Polls a cheap local condition (files) every 2 ms, for moments that pass quickly such as
    /// "mid-download".
    func waitFast<T>(_ what: String, within limit: Duration = .seconds(60), _ condition: () -> T?) async throws -> T {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while true {
            if let value = condition() { return value }
            guard clock.now < deadline else { throw TestFailure("timed out after \(limit) waiting for \(what)\n\(diagnostics())") }
            try await Task.sleep(for: .milliseconds(2))  // the poll interval, bounded by the deadline above
        }
    }

    /// Polls `condition` until `window` has passed, failing at the first poll where it does not
    /// hold: for "nothing happens while ..." (the only way to see an absence is to look for a while).
    func holds(_ what: String, for window: Duration, _ condition: () async throws -> Bool) async throws {
        let clock = ContinuousClock()
        let end = clock.now + window
        while clock.now < end {
            guard try await condition() else { throw TestFailure("\(what) stopped holding\n\(diagnostics())") }
            try await Task.sleep(for: .milliseconds(100))  // the poll interval, bounded by the window's end above
        }
    }

    /// Polls an async condition with a deadline; the failure carries the fleet's logs.
    func wait<T>(_ what: String, within limit: Duration = .seconds(90), _ condition: () async throws -> T?) async throws -> T {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var lastError: (any Error)?
        while true {
            do {
                if let value = try await condition() { return value }
            } catch {
                lastError = error  // the coordinator may be restarting; keep polling until the deadline
            }
            guard clock.now < deadline else {
                throw TestFailure("timed out after \(limit) waiting for \(what)\(lastError.map { " (last error: \($0))" } ?? "")\n\(diagnostics())")
            }
            try await Task.sleep(for: .milliseconds(100))  // the poll interval, bounded by the deadline above
        }
    }
}

/// One agent: its installed root and the process pair running on it.
final class FleetNode: Sendable {
    let id: String
    let address: String
    let root: String
    let logFile: String
    let idleCPU: Double
    private let groups = Mutex<[Int32]>([])

    fileprivate init(
        fleet: Fleet, id: String, address: String, idleCPU: Double, healthDeadline: Double, extraFleetConf: String, extraAgentConf: String = ""
    ) throws {
        self.id = id
        self.address = address
        self.idleCPU = idleCPU
        root = fleet.work.file("agents/\(id)")
        logFile = fleet.work.file("\(id).log")
        let tls = try fleet.pki.configuration(uri: "cascade://agent/\(id)", name: "agent-\(id)", ipAddresses: [address])
        try FileManager.default.createDirectory(atPath: fleet.work.file("agents"), withIntermediateDirectories: true)
        self.fleetConf = """
            coordinator = \(try fleet.coordinatorAddress)
            bind = \(address)
            member-port = 0
            ca = \(tls.trustRootsFile)
            cert = \(tls.certificateChainFile)
            key = \(tls.privateKeyFile)
            release-key = \(fleet.releaseKeyFile)
            report-interval = 1
            idle-cpu = \(idleCPU)
            idle-memory = 0.5
            \(extraFleetConf)
            """
        agentConf = """
            health-deadline = \(healthDeadline)
            stop-grace = 1
            restart-backoff = 0.1
            restart-backoff-max = 0.5
            crash-loop-restarts = 10
            crash-loop-window = 30
            poll-interval = 0.1
            fleet-retry = 0.2
            fleet-retry-max = 0.5
            \(extraAgentConf)
            """
    }

    /// The fleet.conf this node was installed with (each line as the fixture wrote it).
    let fleetConf: String
    private let agentConf: String

    deinit { kill() }

    fileprivate func install(bundle: String) async throws {
        let process = try ChildProcess(try builtProduct("cascade-agent"), ["install", "--root", root, bundle], mergeStandardError: true)
        let status = try await process.exitStatus(within: .seconds(60))
        guard status == 0 else { throw TestFailure("cascade-agent install for \(id) failed: \(process.lines.joined(separator: "\n"))") }
        try agentConf.write(toFile: "\(root)/agent.conf", atomically: true, encoding: .utf8)
        try fleetConf.write(toFile: "\(root)/fleet.conf", atomically: true, encoding: .utf8)
    }

    /// Starts the upgrader as systemd would (it starts the main program) in a new process group.
    func start(environment: [String: String] = [:]) throws {
        let pid = try spawnInOwnGroup("\(root)/upgrader/current/bin/cascade-upgrader", ["--root", root], logFile: logFile, environment: environment)
        groups.withLock { $0.append(pid) }
    }

    /// kill -9 both programs (every process group this node started, and any pid its root
    /// names), as a dead server would; reaps what it can.
    func kill() {
        for group in groups.withLock({ $0 }) { Glibc.kill(-group, SIGKILL) }
        for program in ["main", "upgrader"] {
            if let pid = pid(program), isOurs(pid) { Glibc.kill(pid, SIGKILL) }
        }
        reap()
    }

    /// kill -9 the main program only (its upgrader restarts it).
    @discardableResult
    func killMain() throws -> Int32 {
        guard let pid = pid("main"), isOurs(pid) else { throw TestFailure("\(id)'s main program is not running") }
        Glibc.kill(pid, SIGKILL)
        reap()
        return pid
    }

    /// Reaps our exited children (the upgraders started here) without blocking.
    func reap() {
        for group in groups.withLock({ $0 }) {
            var status: Int32 = 0
            _ = waitpid(group, &status, WNOHANG)
        }
    }

    /// The pid a program's pid file names ("<pid> <version>").
    func pid(_ program: String) -> Int32? {
        guard let text = try? String(contentsOfFile: "\(root)/state/\(program).pid", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Int32($0) }
    }

    /// The pid is alive and runs out of this root.
    func isOurs(_ pid: Int32) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let words = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return words.contains(root) && !stat.contains(") Z ")
    }

    /// The release `program/current` links to (on disk), and what its VERSION file says.
    func version(_ program: String) -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/\(program)/current") else { return nil }
        let linked = URL(fileURLWithPath: target).lastPathComponent
        guard let text = try? String(contentsOfFile: "\(root)/\(program)/current/VERSION", encoding: .utf8),
              text.trimmingCharacters(in: .whitespacesAndNewlines) == linked
        else { return "mismatch(\(linked))" }
        return linked
    }

    /// Both programs are on `version` on disk and the main program runs it.
    func settled(on version: String) -> Bool {
        guard self.version("main") == version, self.version("upgrader") == version,
              let text = try? String(contentsOfFile: "\(root)/state/main.pid", encoding: .utf8),
              text.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(" \(version)"),
              let pid = pid("main"), isOurs(pid)
        else { return false }
        return !FileManager.default.fileExists(atPath: "\(root)/state/switch-main.json")
            && !FileManager.default.fileExists(atPath: "\(root)/state/switch-upgrader.json")
    }

    /// Release directories of a program on disk.
    func releases(_ program: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(program)/releases")) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Verified chunks of the download in progress (the runtime's fsynced progress record), or nil.
    func stagedChunks() -> Int? {
        let directory = "\(root)/state/fleet/downloads"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory),
              let record = names.first(where: { $0.hasSuffix(".progress") }),
              let data = FileManager.default.contents(atPath: "\(directory)/\(record)"), data.count == 8
        else { return nil }
        return Int(data.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// Replaces fleet.conf (atomically, as an operator's editor would leave it).
    func writeFleetConf(_ text: String) throws {
        try text.write(toFile: "\(root)/fleet.conf", atomically: true, encoding: .utf8)
    }

    /// `cascade-agent status` on this root: its exit status and standard output.
    func status() async throws -> (status: Int32, output: [String]) {
        let process = try ChildProcess(try builtProduct("cascade-agent"), ["status", "--root", root])
        // "fleet:" is the last line status prints.
        let (status, lines) = try await process.finished(lastLine: "fleet:", within: .seconds(30))
        return (status, lines)
    }

    /// The status's "fleet:" line once it starts with `prefix` (and the exit status then).
    func fleetLine(startingWith prefix: String, fleet: Fleet, within limit: Duration = .seconds(30)) async throws -> (status: Int32, line: String) {
        try await fleet.wait("\(id)'s status to say \"fleet: \(prefix)\"", within: limit) {
            let (status, output) = try await self.status()
            guard let line = output.first(where: { $0.hasPrefix("fleet:") }) else { return nil }
            let text = line.dropFirst("fleet:".count).trimmingCharacters(in: .whitespaces)
            return text.hasPrefix(prefix) ? (status, text) : nil
        }
    }
}

extension Fleet {
    /// Two clusters: `perSubnet` agents on 127.0.1.11... and 127.0.2.11..., with idle CPU
    /// falling by 0.1 per agent so the first of each subnet has the highest weight; started in
    /// order so the first of each subnet leads it.
    func makeAgents(subnets: [Int] = [1, 2], perSubnet: Int, healthDeadline: Double = 15, extra: (String) -> String = { _ in "" }) async throws -> [[FleetNode]] {
        var bySubnet: [[FleetNode]] = []
        for subnet in subnets {
            var nodes: [FleetNode] = []
            for host in 1...perSubnet {
                let id = "a\(subnet)-\(String(format: "%02d", host))"
                nodes.append(try await addAgent(
                    id, address: "127.0.\(subnet).\(10 + host)", idleCPU: 0.9 - 0.1 * Double(host - 1),
                    healthDeadline: healthDeadline, extraFleetConf: extra(id)))
            }
            bySubnet.append(nodes)
        }
        // Leaders first (in parallel subnets do not matter), then the members.
        try await startInOrder(bySubnet.map { $0[0] })
        try await startInOrder(bySubnet.flatMap { $0.dropFirst() })
        return bySubnet
    }
}

/// Release bundles made once per test run from the built binaries: a small 1.0 (installed
/// locally) and padded 1.1 variants (pushed), so downloads take a moment and have many chunks.
final class Bundles: Sendable {
    static let chunkSize: UInt32 = 64 * 1024
    static let padBytes = 6 * 1024 * 1024

    /// Next to the built products (one set per build, rewritten each run): a static lives until
    /// the process exits, so a temporary directory would never be removed.
    let directory: String
    let base: String
    let good: String
    let neverHealthy: String
    /// 1.1 whose main program passes its health check only 6 s after it starts.
    let slowHealthy: String
    /// 1.1 whose main program exits as soon as it starts.
    let exitAtStart: String
    /// SHA-256 (hex) of the padding file in the 1.1 bundles.
    let padSHA256: String

    private static let made = Mutex<Bundles?>(nil)

    /// The bundles, made the first time (off the cooperative threads: it writes tens of MiB).
    static func shared() async throws -> Bundles {
        if let ready = made.withLock({ $0 }) { return ready }
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { () throws -> Bundles in
                    try made.withLock { (ready: inout Bundles?) throws -> Bundles in
                        if let ready { return ready }
                        let fresh = try Bundles()
                        ready = fresh
                        return fresh
                    }
                })
            }
        }
    }

    private init() throws {
        directory = URL(fileURLWithPath: try builtProduct("cascade-agent")).deletingLastPathComponent().appendingPathComponent("cascade-fleet-bundles").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var pad = [UInt8](repeating: 0, count: Self.padBytes)
        let random = open("/dev/urandom", O_RDONLY)
        guard random >= 0 else { throw TestFailure("cannot open /dev/urandom") }
        defer { close(random) }
        var filled = 0
        while filled < pad.count {
            let count = pad.withUnsafeMutableBytes { read(random, $0.baseAddress! + filled, $0.count - filled) }
            guard count > 0 else { throw TestFailure("cannot read /dev/urandom") }
            filled += count
        }
        padSHA256 = SHA256.hash(pad).hex
        base = try Self.make("1.0", in: directory, pad: [])
        good = try Self.make("1.1", in: directory, pad: pad)
        neverHealthy = try Self.make("1.1", in: directory, pad: pad, behavior: ["main=never-healthy"])
        slowHealthy = try Self.make("1.1", in: directory, pad: pad, behavior: ["main=healthy-after-6s"])
        exitAtStart = try Self.make("1.1", in: directory, pad: pad, behavior: ["main=exit-at-start"])
    }

    /// The number of chunks a pushed bundle has.
    static func chunkCount(_ bundle: String) throws -> Int {
        let size = try FileManager.default.attributesOfItem(atPath: bundle)[.size] as? Int ?? 0
        return (size + Int(chunkSize) - 1) / Int(chunkSize)
    }

    /// A bundle of the built binaries with VERSION, an optional TEST_BEHAVIOR, and padding.
    static func make(_ version: String, in directory: String, pad: [UInt8], behavior: [String] = []) throws -> String {
        var tar = UstarWriter()
        tar.directory("bin")
        for name in ["cascade-agent", "cascade-upgrader"] {
            let binary = try Data(contentsOf: URL(fileURLWithPath: try builtProduct(name)))
            tar.file("bin/\(name)", Array(binary), mode: 0o755)
        }
        tar.file("VERSION", "\(version)\n")
        if !behavior.isEmpty { tar.file("TEST_BEHAVIOR", behavior.joined(separator: "\n") + "\n") }
        if !pad.isEmpty { tar.file("share/padding", pad) }
        let suffix = behavior.isEmpty ? "" : "-" + behavior.joined(separator: "_").replacingOccurrences(of: "=", with: "-")
        let path = "\(directory)/cascade-\(version)\(suffix).tar"
        try Data(tar.finished()).write(to: URL(fileURLWithPath: path), options: .atomic)
        return path
    }
}

/// SHA-256 of a file, as hex.
func sha256Hex(ofFile path: String) throws -> String {
    SHA256.hash(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))).hex
}
