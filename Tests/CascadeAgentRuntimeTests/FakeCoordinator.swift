import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
@testable import CascadeAgentRuntime

/// A release made at test time: random bytes, a manifest, signed by a test key.
struct TestRelease: Sendable {
    let bytes: [UInt8]
    let manifest: Manifest
    let signed: SignedManifest

    init(version: String, size: Int, chunkSize: UInt32, key: Ed25519PrivateKey) throws {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: size)
        for start in stride(from: 0, to: size, by: 8) {
            let word = generator.next()
            for offset in 0..<min(8, size - start) { bytes[start + offset] = UInt8(truncatingIfNeeded: word >> (8 * offset)) }
        }
        let hashes = stride(from: 0, to: size, by: Int(chunkSize)).map {
            SHA256.hash(Array(bytes[$0..<min(size, $0 + Int(chunkSize))]))
        }
        var manifest = Manifest(
            name: "cascade-agent", version: version, size: UInt64(size), chunkSize: chunkSize, chunkHashes: hashes,
            sha256: SHA256.hash(bytes), createdAt: 1_700_000_000)
        manifest.keyID = key.publicKey.keyID
        self.bytes = bytes
        self.manifest = manifest
        self.signed = try SignedManifest.sign(manifest, with: key)
    }

    func chunk(_ index: Int) -> [UInt8] {
        let start = Int(manifest.offset(ofChunk: index))
        return Array(bytes[start..<start + manifest.size(ofChunk: index)])
    }
}

/// A scripted coordinator for one cluster: assigns roles from a fixed list, records reports,
/// serves one release from memory, and (optionally) fails over when the leader's session drops.
final class FakeCoordinator: Sendable {
    struct AgentRecord: Sendable {
        var address = ""
        var port: UInt32 = 0
        var idle = IdleRatios()
        var registrations = 0
        var lastResume: AgentProgress?
        var progress: AgentProgress?
        var sessionOpen = false
        var reports = 0
    }

    struct State: Sendable {
        var clusterMembers: [String] = []
        var leaderID = ""
        var epoch: UInt64 = 1
        var agents: [String: AgentRecord] = [:]
        var sessions: [String: AsyncStream<Instruction>.Continuation] = [:]
        var bytesServed: [String: UInt64] = [:]
        var faults: [FaultReport] = []
        var lastClusterReport: ClusterReport?
        var rollout: ClusterRolloutOrder?
        /// What each rollout installs, as the coordinator tells every agent on its session.
        var expectations: [UInt64: RolloutExpectation] = [:]
        var autoFailover = false
        /// Chunks at or after this index wait until it is cleared.
        var holdFrom: Int?
        /// Every FetchChunks fails (a source that keeps failing).
        var failFetches = false
        /// FetchChunks calls per agent, and how many are running now.
        var fetchCalls: [String: Int] = [:]
        var activeFetches = 0
    }

    let state = Locked(State())
    let holdChanged = ChangeSignal()
    let release: TestRelease
    let server: RPCServer
    var address: SocketAddress { server.localAddress }

    init(pki: TestPKI, ip: String, release: TestRelease, members: [String], leader: String) throws {
        self.release = release
        let router = RPCRouter()
        let tls = try TLSContext(configuration: pki.configuration(uri: "cascade://coordinator/c-\(ip)"), side: .server)
        server = try RPCServer(bindingTo: SocketAddress(ip: ip, port: 0), tls: tls, router: router)
        state.withLock {
            $0.clusterMembers = members
            $0.leaderID = leader
        }
        register(on: router)
        server.start()
    }

    func stop() async { await server.shutdown(drainTimeout: .milliseconds(200)) }

    // MARK: - Scripting

    func assignment(for id: String, in state: State) -> Assignment {
        let leader = state.agents[state.leaderID]
        let isLeader = id == state.leaderID
        return Assignment(
            agentID: id, role: isLeader ? .leader : .member, clusterID: "cluster-1", clusterPrefix: "127.0.0.0/24",
            leaderID: state.leaderID, leaderAddress: leader.map { "\($0.address):\($0.port)" } ?? "",
            leaderEpoch: state.epoch, reportIntervalMs: 200,
            memberIDs: isLeader ? state.clusterMembers.filter { $0 != state.leaderID } : [])
    }

    /// Sends an instruction on the agent's session. A direct upgrade order carries what the
    /// rollout installs, as the real coordinator's does (the order is the coordinator's own).
    func send(_ instruction: Instruction, to id: String) {
        var instruction = instruction
        if let order = instruction.upgrade, instruction.expectation == nil, let signed = order.signedManifest {
            instruction.expectation = state.value.expectations[order.rolloutID] ?? RolloutExpectation(
                rolloutID: order.rolloutID, releaseName: release.manifest.name, releaseVersion: order.releaseVersion,
                manifestSHA256: signed.manifestDigest)
        }
        _ = state.withLock { $0.sessions[id] }?.yield(instruction)
    }

    /// What rollout `id` installs: this fleet's release (or `signed`).
    func expectation(id: UInt64, signed: SignedManifest? = nil, downgrade: SignedDowngrade? = nil) -> RolloutExpectation {
        RolloutExpectation(
            rolloutID: id, releaseName: release.manifest.name, releaseVersion: release.manifest.version,
            manifestSHA256: (signed ?? release.signed).manifestDigest, downgrade: downgrade)
    }

    /// Tells every connected agent what rollout `id` installs (and remembers it for sessions
    /// that open later), as the real coordinator does when a cluster starts.
    func expect(_ expectation: RolloutExpectation) {
        let (ids, epoch) = state.withLock { state -> ([String], UInt64) in
            state.expectations[expectation.rolloutID] = expectation
            return (Array(state.sessions.keys), state.epoch)
        }
        for id in ids { send(Instruction(leaderEpoch: epoch, expectation: expectation), to: id) }
    }

    /// Tells every agent what the rollout installs, then sends the cluster rollout to the
    /// leader, with the members' recorded progress.
    /// `announce` false leaves the expectation unsent (a test sends it later with `expect`).
    func startRollout(id: UInt64 = 7, policy: RolloutPolicy, signed: SignedManifest? = nil, weights: IdleWeights? = nil,
                      downgrade: SignedDowngrade? = nil, announce: Bool = true, recorded: [String: AgentProgress] = [:]) {
        let signed = signed ?? release.signed
        if announce { expect(expectation(id: id, signed: signed, downgrade: downgrade)) }
        let (order, leaderID, epoch) = state.withLock { state -> (ClusterRolloutOrder, String, UInt64) in
            let order = ClusterRolloutOrder(
                rolloutID: id, releaseVersion: release.manifest.version, signedManifest: signed,
                policy: policy, members: memberStatuses(state).map { status in
                    var status = status
                    if let progress = recorded[status.agentID] { status.progress = progress }
                    return status
                }, weights: weights)
            state.rollout = order
            return (order, state.leaderID, state.epoch)
        }
        send(Instruction(leaderEpoch: epoch, clusterRollout: order), to: leaderID)
    }

    private func memberStatuses(_ state: State) -> [MemberStatus] {
        state.clusterMembers.filter { $0 != state.leaderID }.map {
            MemberStatus(agentID: $0, connected: state.agents[$0]?.sessionOpen ?? false, progress: state.agents[$0]?.progress)
        }
    }

    func hold(from index: Int?) {
        state.withLock { $0.holdFrom = index }
        holdChanged.notify()
    }

    /// The leader is gone: the live member with the highest idle weight leads under epoch + 1.
    private func failOver() {
        let sends = state.withLock { state -> [(String, Instruction)] in
            let candidates = state.clusterMembers.filter { $0 != state.leaderID && state.agents[$0]?.sessionOpen == true }
                .map { (id: $0, idle: state.agents[$0]!.idle) }
            guard let chosen = IdleWeights.default.best(of: candidates) else { return [] }
            state.leaderID = chosen
            state.epoch += 1
            var sends = state.sessions.keys.map { ($0, Instruction(leaderEpoch: state.epoch, assignment: assignment(for: $0, in: state))) }
            if var order = state.rollout {
                order.members = memberStatuses(state)
                sends.append((chosen, Instruction(leaderEpoch: state.epoch, clusterRollout: order)))
            }
            return sends
        }
        for (id, instruction) in sends { send(instruction, to: id) }
    }

    // MARK: - The coordinator's methods

    private func register(on router: RPCRouter) {
        router.unary(CoordinatorService.register) { request, context in
            let id = context.peer!.id
            return try self.state.withLock { state -> Result<Assignment, RPCError> in
                guard state.clusterMembers.contains(id) else { return .failure(RPCError(.permissionDenied, "unknown agent \(id)")) }
                var record = state.agents[id] ?? AgentRecord()
                record.address = request.address
                record.port = request.memberPort
                record.idle = request.idle
                record.registrations += 1
                record.lastResume = request.resume
                if let resume = request.resume { record.progress = resume }
                state.agents[id] = record
                return .success(self.assignment(for: id, in: state))
            }.get()
        }
        router.bidirectional(CoordinatorService.session) { reports, writer, context in
            let id = context.peer!.id
            let (instructions, outbound) = AsyncStream.makeStream(of: Instruction.self)
            let (expectations, epoch) = self.state.withLock { state -> ([RolloutExpectation], UInt64) in
                state.sessions[id]?.finish()
                state.sessions[id] = outbound
                state.agents[id, default: AgentRecord()].sessionOpen = true
                return (Array(state.expectations.values), state.epoch)
            }
            for expectation in expectations { outbound.yield(Instruction(leaderEpoch: epoch, expectation: expectation)) }
            defer {
                let wasLeader = self.state.withLock { state -> Bool in
                    state.sessions[id] = nil
                    state.agents[id]?.sessionOpen = false
                    return state.leaderID == id && state.autoFailover
                }
                if wasLeader { self.failOver() }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await instruction in instructions { try await writer.write(instruction) }
                }
                group.addTask {
                    for try await report in reports {
                        self.state.withLock { state in
                            state.agents[id]?.reports += 1
                            if let idle = report.heartbeat?.idle { state.agents[id]?.idle = idle }
                            if let progress = report.progress { state.agents[id]?.progress = progress }
                            if let cluster = report.cluster {
                                state.lastClusterReport = cluster
                                for member in cluster.members {
                                    if let progress = member.progress { state.agents[member.agentID]?.progress = progress }
                                }
                            }
                        }
                    }
                }
                _ = try await group.next()
                group.cancelAll()
            }
        }
        router.unary(CoordinatorService.getRelease) { _, _ in self.release.signed }
        router.serverStreaming(CoordinatorService.fetchChunks) { request, writer, context in
            let id = context.peer!.id
            let failing = self.state.withLock { state -> Bool in
                state.fetchCalls[id, default: 0] += 1
                state.activeFetches += 1
                return state.failFetches
            }
            defer { self.state.withLock { $0.activeFetches -= 1 } }
            if failing { throw RPCError(.dataLoss, "chunk 0 of release \(request.version) failed its check where it rests") }
            guard request.version == self.release.manifest.version else { throw APIError.unknownRelease(request.version) }
            for index in Int(request.firstIndex)..<self.release.manifest.chunkCount {
                while true {
                    let seen = self.holdChanged.generation
                    guard let hold = self.state.value.holdFrom, index >= hold else { break }
                    try Task.checkCancellation()
                    await self.holdChanged.wait(after: seen)
                }
                let data = self.release.chunk(index)
                try await writer.write(Chunk(index: UInt32(index), data: data, sha256: self.release.manifest.chunkHashes[index]))
                self.state.withLock { $0.bytesServed[id, default: 0] += UInt64(data.count) }
            }
        }
        router.unary(CoordinatorService.reportFault) { report, _ in
            self.state.withLock { $0.faults.append(report) }
            return FetchHint(rolloutID: report.rolloutID, source: .coordinator, reason: "the leader served a bad chunk")
        }
    }
}
