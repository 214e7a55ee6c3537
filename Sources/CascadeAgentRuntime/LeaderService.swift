import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC

/// One member's Join stream, as the leader holds it: instructions queue here and the stream's
/// handler writes them out in order.
final class MemberSession: Sendable {
    let memberID: String
    let instructions: AsyncStream<Instruction>
    let outbound: AsyncStream<Instruction>.Continuation
    /// Its first report arrived: only then does the leader know where the member stands and
    /// may send it an order (else a rejoin would get the same order twice).
    let reported = Locked(false)

    init(memberID: String) {
        self.memberID = memberID
        (instructions, outbound) = AsyncStream.makeStream(of: Instruction.self)
    }

    func send(_ instruction: Instruction) { outbound.yield(instruction) }
    func end() { outbound.finish() }
}

/// The rollout a leader runs in its cluster.
struct LeaderRollout: Sendable {
    var order: ClusterRolloutOrder
    let manifest: Manifest
    let artifact: StagedArtifact
    var pacer: RolloutPacer
    var fetch: Task<Void, Never>?
    var secondInstructionFrom: String?
    var bytesReceived: UInt64 = 0
    var bytesServed: UInt64 = 0
}

struct LeaderState: Sendable {
    var active = false
    var epoch: UInt64 = 0
    var clusterID = ""
    var memberIDs: Set<String> = []
    var sessions: [String: MemberSession] = [:]
    var heartbeats: [String: Heartbeat] = [:]
    var progress: [String: AgentProgress] = [:]
    var rollout: LeaderRollout?
}

/// `cascade.Leader`, served by every agent and answered only while it leads: members join,
/// fetch chunks (served from the staged file while the leader is still receiving it) and, at
/// the end, the sixth server sends the second instruction.
extension AgentRuntime {
    func registerLeaderMethods(on router: RPCRouter) {
        router.bidirectional(LeaderService.join) { reports, writer, context in
            let member = try self.authorizeMember(context, epoch: LeaderEpochMetadata.value(in: context.metadata))
            let session = MemberSession(memberID: member)
            self.open(session)
            defer { self.close(session) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await instruction in session.instructions { try await writer.write(instruction) }
                }
                group.addTask {
                    var first = true
                    for try await report in reports {
                        self.memberReported(member, report, joined: first)
                        first = false
                    }
                }
                _ = try await group.next()
                group.cancelAll()
            }
        }
        router.serverStreaming(LeaderService.fetchChunks) { request, writer, context in
            _ = try self.authorizeMember(context, epoch: LeaderEpochMetadata.value(in: context.metadata))
            try await self.serveChunks(request, to: writer)
        }
        router.unary(LeaderService.upgradeLeader) { request, context in
            try self.acceptSecondInstruction(request, context: context)
        }
    }

    /// FAILED_PRECONDITION unless this agent leads now (under the caller's epoch, when it says
    /// one); PERMISSION_DENIED unless the caller's certificate names a member of the cluster.
    func authorizeMember(_ context: ServerContext, epoch: UInt64?) throws -> String {
        let me = core.value
        let verdict = leader.withLock { state -> Result<String, RPCError> in
            guard state.active else {
                return .failure(APIError.notLeader(me.agentID, leaderID: me.assignment?.leaderID ?? ""))
            }
            guard let peer = context.peer, peer.role == .agent, state.memberIDs.contains(peer.id) else {
                return .failure(APIError.notYours("\(context.peer.map { "\($0)" } ?? "an anonymous peer") is not a member of cluster \(state.clusterID)"))
            }
            if let epoch, epoch != state.epoch {
                return .failure(epoch < state.epoch
                    ? APIError.staleEpoch(epoch, current: state.epoch)
                    : RPCError(.failedPrecondition, "leader epoch \(epoch) is not this leader's epoch \(state.epoch)"))
            }
            return .success(peer.id)
        }
        return try verdict.get()
    }

    // MARK: - Role changes

    func activateLeader(_ assignment: Assignment) {
        let dropped = leader.withLock { state -> [MemberSession] in
            let epochChanged = state.epoch != assignment.leaderEpoch
            state.active = true
            state.epoch = assignment.leaderEpoch
            state.clusterID = assignment.clusterID
            state.memberIDs = Set(assignment.memberIDs)
            // Members joined under another epoch or no longer in the cluster rejoin (or leave).
            let gone = state.sessions.values.filter { epochChanged || !state.memberIDs.contains($0.memberID) }
            for session in gone { state.sessions[session.memberID] = nil }
            return gone
        }
        for session in dropped { session.end() }
        log("leading cluster \(assignment.clusterID) under epoch \(assignment.leaderEpoch) with \(assignment.memberIDs.count) members")
        tick()
    }

    func deactivateLeader() {
        let (sessions, fetch) = leader.withLock { state -> ([MemberSession], Task<Void, Never>?) in
            guard state.active || !state.sessions.isEmpty else { return ([], nil) }
            let sessions = Array(state.sessions.values)
            let fetch = state.rollout?.fetch
            state = LeaderState()
            return (sessions, fetch)
        }
        fetch?.cancel()
        for session in sessions { session.end() }
    }

    // MARK: - Member sessions

    private func open(_ session: MemberSession) {
        let replaced = leader.withLock { state -> MemberSession? in
            defer { state.sessions[session.memberID] = session }
            return state.sessions[session.memberID]
        }
        replaced?.end()
    }

    private func close(_ session: MemberSession) {
        session.end()
        leader.withLock { state in
            guard state.sessions[session.memberID] === session else { return }
            state.sessions[session.memberID] = nil
            if state.rollout?.secondInstructionFrom == nil { state.rollout?.pacer.forgetCue(of: session.memberID) }
        }
        clusterChanged.notify()
    }

    /// `joined`: the first report of a new Join stream, the one moment a member that says
    /// nothing of the rollout may be sent its order again.
    private func memberReported(_ member: String, _ report: AgentReport, joined: Bool) {
        leader.withLock { state in
            guard report.leaderEpoch == state.epoch else { return }
            state.sessions[member]?.reported.withLock { $0 = true }
            if let heartbeat = report.heartbeat { state.heartbeats[member] = heartbeat }
            if let progress = report.progress { state.progress[member] = progress }
            let current = report.progress.flatMap { $0.rolloutID == state.rollout?.pacer.rolloutID ? $0 : nil }
            state.rollout?.pacer.update(member, progress: current, mainVersion: report.heartbeat?.mainVersion, rejoined: joined)
        }
        clusterChanged.notify()
        tick()
    }

    // MARK: - The rollout

    /// The coordinator's order to run a rollout here (again, after a failover: the members'
    /// recorded states say who is done, so nobody is instructed twice or skipped).
    func startClusterRollout(_ order: ClusterRolloutOrder) {
        guard leader.value.active else {
            refuse("a cluster rollout \(order.rolloutID) while not leading")
            return
        }
        if leader.value.rollout?.pacer.rolloutID == order.rolloutID {
            // A refresh. A member the coordinator ended (its state's deadline passed) frees its
            // slot here, so the next member starts instead of waiting on it for good.
            leader.withLock { state in
                state.rollout?.pacer.failureLimit = Int(order.failureLimit)
                for member in order.members {
                    guard let progress = member.progress, progress.rolloutID == order.rolloutID, progress.state.isTerminal,
                          state.rollout?.pacer.states[member.agentID].map({ !$0.isTerminal }) == true else { continue }
                    state.rollout?.pacer.update(member.agentID, progress: progress, mainVersion: nil, rejoined: false)
                }
            }
            tick()
            return
        }
        let manifest: Manifest
        let artifact: StagedArtifact
        do {
            // Never forward a release that does not verify against the pinned keys. Whether
            // this agent may install it is checked when it upgrades itself (upgradeSelf).
            guard let signed = order.signedManifest else { throw RuntimeError(.refusedRelease, "the order carries no signed manifest") }
            manifest = try verifier.verify(signed)
            guard manifest.version == order.releaseVersion, manifest.name == configuration.programName else {
                throw RuntimeError(.refusedRelease, "the order names \(order.releaseVersion) of \(configuration.programName), but the manifest is \(manifest.name) \(manifest.version)")
            }
            artifact = try staging.artifact(for: signed, manifest: manifest)
        } catch {
            refuse("cluster rollout \(order.rolloutID) of \(order.releaseVersion): \(error)")
            setProgress(AgentProgress(rolloutID: order.rolloutID, state: .failed, releaseVersion: order.releaseVersion, error: "refused: \(error)"))
            return
        }
        let started = leader.withLock { state -> Task<Void, Never>? in
            guard state.active else { return nil }
            state.rollout?.fetch?.cancel()
            var pacer = RolloutPacer(order: order, memberIDs: Array(state.memberIDs))
            for (member, progress) in state.progress where progress.rolloutID == order.rolloutID {
                pacer.update(member, progress: progress, mainVersion: state.heartbeats[member]?.mainVersion, rejoined: false)
            }
            let fetch = Task { await self.fetchFromCoordinator(artifact, rolloutID: order.rolloutID) }
            state.rollout = LeaderRollout(order: order, manifest: manifest, artifact: artifact, pacer: pacer, fetch: fetch)
            return fetch
        }
        guard started != nil else { return }
        if core.value.progress?.rolloutID != order.rolloutID {
            setProgress(AgentProgress(rolloutID: order.rolloutID, state: .pending, releaseVersion: order.releaseVersion))
        }
        log("running rollout \(order.rolloutID) (\(order.releaseVersion)) in the cluster, \(artifact.verifiedChunks)/\(manifest.chunkCount) chunks staged")
        tick()
    }

    /// Pause stops new first instructions; resume continues; abort stops them for good and
    /// tells the members in flight.
    func controlRollout(_ control: RolloutControl) {
        let (inFlight, fetch) = leader.withLock { state -> ([MemberSession], Task<Void, Never>?) in
            guard state.rollout?.pacer.rolloutID == control.rolloutID else { return ([], nil) }
            state.rollout?.pacer.apply(control.action)
            guard control.action == .abort, let pacer = state.rollout?.pacer else { return ([], nil) }
            // An aborted rollout fetches nothing more.
            state.rollout?.artifact.abandon("rollout \(control.rolloutID) was aborted")
            return (pacer.states.filter { RolloutPacer.isInFlight($0.value) }.compactMap { state.sessions[$0.key] }, state.rollout?.fetch)
        }
        fetch?.cancel()
        let epoch = leader.value.epoch
        for session in inFlight { session.send(Instruction(leaderEpoch: epoch, control: control)) }
        log("rollout \(control.rolloutID): \(control.action) (\(control.reason))")
        tick()
    }

    /// Sends whatever the rollout's pace allows now: first instructions (jittered), and the
    /// cue to the sixth server once every member is done.
    func tick() {
        let jitter = configuration.startJitter
        let (orders, cue, epoch) = leader.withLock { state -> ([(MemberSession, UpgradeOrder)], (MemberSession, SecondInstructionCue)?, UInt64) in
            guard state.active, var rollout = state.rollout else { return ([], nil, 0) }
            let connected = Set(state.sessions.filter { $0.value.reported.value }.keys)
            let order = UpgradeOrder(
                rolloutID: rollout.order.rolloutID, releaseVersion: rollout.order.releaseVersion,
                signedManifest: rollout.order.signedManifest, healthTimeoutSeconds: rollout.order.policy.healthTimeoutSeconds,
                rollback: rollout.order.policy.rollback)
            let orders = rollout.pacer.nextToInstruct(connected: connected).compactMap { id in state.sessions[id].map { ($0, order) } }
            var cue: (MemberSession, SecondInstructionCue)?
            if rollout.secondInstructionFrom == nil,
               let chosen = rollout.pacer.memberToCue(
                   idle: state.heartbeats.mapValues(\.idle), connected: connected, weights: rollout.order.weights),
               let session = state.sessions[chosen] {
                cue = (session, SecondInstructionCue(rolloutID: rollout.order.rolloutID, releaseVersion: rollout.order.releaseVersion))
            }
            state.rollout = rollout
            return (orders, cue, state.epoch)
        }
        for (session, order) in orders {
            configuration.onEvent(.memberInstructed(session.memberID, rolloutID: order.rolloutID))
            Task {
                // Jittered starts: members do not all hit the leader in the same millisecond.
                await pause(.nanoseconds(Int64.random(in: 0...max(0, jitter.nanosecondsValue))))
                session.send(Instruction(leaderEpoch: epoch, upgrade: order))
            }
        }
        if let (session, cue) = cue {
            log("every member is done: \(session.memberID) sends the second instruction")
            session.send(Instruction(leaderEpoch: epoch, secondInstructionCue: cue))
        }
        if !orders.isEmpty || cue != nil { clusterChanged.notify() }
    }

    // MARK: - Fetch once, serve many

    /// Fetches the release from the coordinator once (resuming from the last verified chunk
    /// after any failure) while members are already being served what has arrived.
    private func fetchFromCoordinator(_ artifact: StagedArtifact, rolloutID: UInt64) async {
        var failures = 0
        let source = ChunkSource(kind: .coordinator, client: coordinator)
        while !artifact.isComplete && !Task.isCancelled {
            let before = artifact.verifiedChunks
            do {
                try await ChunkDownloader.fetch(into: artifact, from: source, options: CallOptions()) { bytes in
                    self.counters.withLock { $0.bytesFromCoordinator += UInt64(bytes) }
                    self.configuration.metrics.bytesReceived.add(UInt64(bytes), artifact.manifest.version, "coordinator")
                    self.leader.withLock { state in
                        if state.rollout?.pacer.rolloutID == rolloutID { state.rollout?.bytesReceived += UInt64(bytes) }
                    }
                }
            } catch let error as RuntimeError where error.code == .noSpace {
                warn("giving up fetching \(artifact.manifest.version): \(error.message)")
                artifact.abandon(error.message)
                return
            } catch {
                if Task.isCancelled { return }
                warn("fetching \(artifact.manifest.version) from the coordinator failed: \(error)")
                failures = artifact.verifiedChunks > before ? 1 : failures + 1
                // Bounded: a source that keeps failing is reported and given up on, never
                // fetched from forever; members then fetch from the coordinator themselves.
                if failures >= Self.fetchAttemptsWithoutProgress {
                    let reason = "\(failures) attempts in a row made no progress; the last: \(error)"
                    warn("giving up fetching \(artifact.manifest.version) from the coordinator: \(reason)")
                    artifact.abandon(reason)
                    await reportFailingSource(artifact, rolloutID: rolloutID, reason: "\(error)")
                    return
                }
                await pause(configuration.retryBackoff.delay(afterFailures: failures))
            }
        }
        if artifact.isComplete { log("staged \(artifact.manifest.version) (\(artifact.manifest.size) bytes)") }
    }

    /// Attempts in a row without a verified chunk before a fetch is given up.
    static let fetchAttemptsWithoutProgress = 8

    /// Tells the coordinator its own copy failed us (it checks what it holds).
    private func reportFailingSource(_ artifact: StagedArtifact, rolloutID: UInt64, reason: String) async {
        let report = FaultReport(
            rolloutID: rolloutID, sourceID: "", releaseVersion: artifact.manifest.version,
            chunkIndex: UInt32(artifact.verifiedChunks), leaderEpoch: core.value.epoch, detail: String(reason.prefix(400)))
        do {
            _ = try await coordinator.unary(CoordinatorService.reportFault, report, options: callOptions)
        } catch {
            warn("reporting the failing source of \(artifact.manifest.version) failed: \(error)")
        }
    }

    private func serveChunks(_ request: FetchChunksRequest, to writer: StreamWriter<Chunk>) async throws {
        let artifact = try await artifactToServe(version: request.version, sha256: request.artifactSHA256)
        let manifest = artifact.manifest
        let first = Int(request.firstIndex)
        // Valid indexes are 0 ..< count (services.md §3.1): the count itself is out of range.
        guard first < manifest.chunkCount else {
            throw RPCError(.outOfRange, "chunk \(first) does not exist: release \(manifest.version) has \(manifest.chunkCount) chunks")
        }
        let end = request.maxChunks == 0 ? manifest.chunkCount : min(manifest.chunkCount, first + Int(request.maxChunks))
        let corrupt = configuration.faults.corruptServedChunks
        for index in first..<end {
            try await artifact.waitForChunk(index)
            var data = try artifact.readChunk(index)
            if corrupt.contains(UInt32(index)), !data.isEmpty { data[0] ^= 0xFF }
            try await writer.write(Chunk(index: UInt32(index), data: data, sha256: manifest.chunkHashes[index]))
            counters.withLock { $0.bytesServed += UInt64(data.count) }
            configuration.metrics.bytesServed.add(UInt64(data.count), manifest.version)
            leader.withLock { state in
                if state.rollout?.artifact === artifact { state.rollout?.bytesServed += UInt64(data.count) }
            }
        }
    }

    /// The staged artifact a member asks for; waits a little for the coordinator's order when a
    /// member (after a failover) asks before this new leader has heard of the rollout.
    /// The staged release a request names (by version, digest or both, as §3.1 allows). A
    /// member's order can overtake its leader's: a request that names another release waits a
    /// moment for the leader's own order, then is NOT_FOUND (UNAVAILABLE while it runs none).
    private func artifactToServe(version: String, sha256: SHA256Digest?) async throws -> StagedArtifact {
        guard !version.isEmpty || sha256 != nil else {
            throw RPCError(.invalidArgument, "name the release by version, by artifact_sha256, or both")
        }
        let deadline = ContinuousClock.now + configuration.timeouts.artifactWait
        while true {
            let current = leader.withLock { $0.rollout?.artifact }
            if let current, version.isEmpty || current.manifest.version == version, sha256 == nil || current.manifest.sha256 == sha256 {
                return current
            }
            guard ContinuousClock.now < deadline else {
                let named = version.isEmpty ? "the release with artifact \(sha256?.hex.prefix(16) ?? "")…" : "release \(version)"
                if let current {
                    throw RPCError(.notFound, "this leader serves release \(current.manifest.version), not \(named)")
                }
                throw RPCError(.unavailable, "this leader has no staged release (yet), so not \(named)")
            }
            // A short poll: this only happens in the moments after a leader change.
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: - The second instruction

    private func acceptSecondInstruction(_ request: UpgradeLeaderRequest, context: ServerContext) throws -> UpgradeLeaderResponse {
        let member = try authorizeMember(context, epoch: request.leaderEpoch)
        guard request.senderID == member else {
            throw APIError.notYours("the request says sender \(request.senderID) but the certificate says \(member)")
        }
        enum Verdict { case refused(RPCError), repeated, accepted(LeaderRollout) }
        let verdict = leader.withLock { state -> Verdict in
            guard let rollout = state.rollout, rollout.pacer.rolloutID == request.rolloutID else {
                return .refused(APIError.unknownRollout(request.rolloutID))
            }
            if rollout.secondInstructionFrom != nil { return .repeated }
            // Stop means stop: a paused or aborted rollout starts no install, the leader's included.
            if rollout.pacer.aborted || rollout.pacer.paused || rollout.pacer.budgetSpent {
                let why = rollout.pacer.aborted ? "is aborted" : rollout.pacer.paused ? "is paused" : "has spent its failure budget"
                return .refused(RPCError(.failedPrecondition, "rollout \(request.rolloutID) \(why); the leader does not upgrade now"))
            }
            guard request.releaseVersion == rollout.order.releaseVersion else {
                return .refused(RPCError(.failedPrecondition, "rollout \(request.rolloutID) installs \(rollout.order.releaseVersion), not \(request.releaseVersion)"))
            }
            guard rollout.pacer.allTerminal else {
                return .refused(RPCError(.failedPrecondition, "members of cluster \(state.clusterID) are still upgrading"))
            }
            state.rollout?.secondInstructionFrom = member
            return .accepted(rollout)
        }
        switch verdict {
        case .refused(let error): throw error
        case .repeated: return UpgradeLeaderResponse(alreadyUpgrading: true)
        case .accepted(let rollout):
            log("second instruction from \(member): the leader upgrades now")
            configuration.onEvent(.secondInstructionReceived(from: member, rolloutID: request.rolloutID))
            clusterChanged.notify()
            startBackground { await self.upgradeSelf(rollout) }
            return UpgradeLeaderResponse(alreadyUpgrading: false)
        }
    }

    /// The leader upgrades last, from the release it staged and served.
    private func upgradeSelf(_ rollout: LeaderRollout) async {
        var progress = AgentProgress(
            rolloutID: rollout.order.rolloutID, state: .installing, releaseVersion: rollout.manifest.version,
            bytesDone: rollout.manifest.size, bytesTotal: rollout.manifest.size)
        if let own = core.value.progress, own.rolloutID == progress.rolloutID, own.state == .healthy || own.state == .rolledBack {
            progressChanged.notify()
            return
        }
        if core.value.mainVersion == rollout.manifest.version {
            progress.state = .healthy
            setProgress(progress)
            return
        }
        do {
            // The leader upgrades only to what the coordinator named, within its install floor.
            _ = try acceptableManifest(rollout.order.signedManifest, rolloutID: rollout.order.rolloutID, version: rollout.order.releaseVersion)
            if !rollout.artifact.isComplete { try await rollout.artifact.waitForChunk(rollout.manifest.chunkCount - 1) }
            try await installStaged(
                rollout.artifact, progress: progress, healthTimeout: .seconds(Int(rollout.order.policy.effectiveHealthTimeoutSeconds)))
        } catch {
            progress.state = .failed
            // What the operator reads: never a Swift type name such as "CancellationError()".
            progress.error = error is CancellationError ? "stopped before it was installed (the rollout ended or the agent is stopping)" : "\(error)"
            setProgress(progress)
        }
    }

    // MARK: - Reports

    func clusterReport() -> ClusterReport? {
        leader.withLock { state -> ClusterReport? in
            guard state.active else { return nil }
            let rolloutID = state.rollout?.pacer.rolloutID
            let members = state.memberIDs.sorted().map { id in
                MemberStatus(
                    agentID: id, connected: state.sessions[id] != nil, heartbeat: state.heartbeats[id],
                    progress: state.progress[id].flatMap { $0.rolloutID == rolloutID ? $0 : nil })
            }
            return ClusterReport(
                clusterID: state.clusterID, rolloutID: rolloutID ?? 0, members: members, complete: true,
                bytesReceived: state.rollout?.bytesReceived ?? 0, bytesServed: state.rollout?.bytesServed ?? 0)
        }
    }

    var leaderStatus: LeaderStatus? {
        leader.withLock { state -> LeaderStatus? in
            guard state.active, let rollout = state.rollout else { return nil }
            return LeaderStatus(
                rolloutID: rollout.pacer.rolloutID, memberStates: rollout.pacer.states,
                connectedMembers: Set(state.sessions.keys), stagedChunks: rollout.artifact.verifiedChunks,
                chunkCount: rollout.manifest.chunkCount, peakInFlight: rollout.pacer.peakInFlight,
                paused: rollout.pacer.paused, aborted: rollout.pacer.aborted,
                secondInstructionFrom: rollout.secondInstructionFrom)
        }
    }
}

extension Duration {
    var nanosecondsValue: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
