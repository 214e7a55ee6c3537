import CascadeAPI
import CascadeNet
import CascadeRPC
import CascadeStore
import Synchronization

/// `cascade.Coordinator`: what agents call. An agent acts only for the id in its certificate.
extension Coordinator {
    func registerAgentMethods(on router: RPCRouter) {
        router.unary(CoordinatorService.register) { request, context in
            try await self.register(request, context)
        }
        router.bidirectional(CoordinatorService.session) { reports, writer, context in
            try await self.session(reports, writer, context)
        }
        router.unary(CoordinatorService.getRelease) { request, _ in
            try await mapped {
                guard let record = try await self.store.run({ store throws(StoreError) in try store.release(version: request.version) }),
                      record.isComplete
                else { throw APIError.unknownRelease(request.version) }
                return record.signedManifest
            }
        }
        router.serverStreaming(CoordinatorService.fetchChunks) { request, writer, context in
            try await self.fetchChunks(request, writer, caller: try Self.agentID(context))
        }
        router.unary(CoordinatorService.reportFault) { report, context in
            try await self.reportFault(report, context)
        }
    }

    static func agentID(_ context: ServerContext) throws -> String {
        guard let peer = context.peer, peer.role == .agent else {
            throw RPCError(.permissionDenied, "only agents call \(context.method)")
        }
        return peer.id
    }

    private func register(_ request: RegisterRequest, _ context: ServerContext) async throws -> Assignment {
        let id = try Self.agentID(context)
        guard (try? SocketAddress(ip: request.address, port: 0)) != nil else {
            throw APIError.invalid("the address \"\(request.address)\" is not an IP address")
        }
        guard request.memberPort > 0, request.memberPort <= UInt32(UInt16.max) else {
            throw APIError.invalid("the member port \(request.memberPort) is not a TCP port")
        }
        metrics.registrations.add(1, ordering: .relaxed)
        let registration = AgentRegistration(
            id: id, address: request.address, port: Int(request.memberPort), mainVersion: request.mainVersion,
            upgraderVersion: request.upgraderVersion, cpuIdle: request.idle.cpu, memoryIdle: request.idle.memory)
        // Batched with whoever else registers meanwhile (one commit for them all).
        let registered = try await mapped { try await registrations.register(registration) }
        let (assignment, members) = (registered.assignment, registered.memberIDs)
        for change in assignment.leaderChanges { await announce(change) }
        if let progress = request.resume { await apply(progress, from: id, reportedBy: id) }
        // The leader admits only the members it knows of: it hears of new ones in the next
        // batch (a fleet registering at once costs one update per leader, not one per member).
        if let leader = assignment.leader, leader.id != id { batcher.refreshLeader(leader.id) }
        return message(for: assignment, members: members)
    }

    /// An agent's assignment as the API states it, read now.
    func assignmentView(_ agentID: String) async throws -> Assignment {
        let (assignment, members) = try await store.run { store throws(StoreError) in
            let assignment = try store.assignment(agentID: agentID)
            return (assignment, try store.agents(inCluster: assignment.cluster.id).map(\.id))
        }
        return message(for: assignment, members: members)
    }

    /// The API form of an assignment, with the leader's member address; a leader also gets
    /// its cluster's member ids (it serves only those).
    func message(for assignment: AgentAssignment, members: [String]) -> Assignment {
        Assignment(
            agentID: assignment.agent.id, role: CascadeAPI.AgentRole(assignment.role), clusterID: assignment.cluster.prefix,
            clusterPrefix: assignment.cluster.prefix, leaderID: assignment.leader?.id ?? "",
            leaderAddress: assignment.leader?.memberAddress ?? "", leaderEpoch: UInt64(assignment.cluster.leaderEpoch),
            reportIntervalMs: UInt32(clamping: configuration.reportInterval.nanosecondsClamped / 1_000_000),
            memberIDs: assignment.role == .leader ? members.filter { $0 != assignment.agent.id }.sorted() : [])
    }

    private func session(_ reports: MessageStream<AgentReport>, _ writer: StreamWriter<Instruction>, _ context: ServerContext) async throws {
        let id = try Self.agentID(context)
        let (token, instructions) = hub.attach(id)
        let pump = Task {
            for await instruction in instructions {
                do { try await writer.write(instruction) } catch { return }
            }
        }
        defer { pump.cancel() }
        // Tell the agent where it stands now; a restarted coordinator's agents learn it here.
        if let current = try? await assignmentView(id) {
            hub.send(Instruction(leaderEpoch: current.leaderEpoch, assignment: current), to: id)
        }
        do {
            for try await report in reports {
                metrics.reportsHandled.add(1, ordering: .relaxed)
                try await handle(report, from: id)
            }
        } catch {
            await sessionEnded(id, token: token, reason: "its session failed: \(error)")
            throw error
        }
        await sessionEnded(id, token: token, reason: "it closed its session")
    }

    private func sessionEnded(_ id: String, token: UInt64, reason: String) async {
        // A newer session from the same agent has taken over: it is not offline.
        guard hub.detach(id, token: token) else { return }
        do {
            let change = try await store.run { store throws(StoreError) in
                try store.markAgentOffline(id: id, reason: reason)
            }
            if let change { await announce(change) }
        } catch {
            log("cannot mark \(id) offline: \(error.message)")
        }
    }

    private func handle(_ report: AgentReport, from id: String) async throws {
        if let heartbeat = report.heartbeat {
            guard (0...APILimits.ratioScale).contains(heartbeat.idle.cpuPPM), (0...APILimits.ratioScale).contains(heartbeat.idle.memoryPPM) else {
                throw APIError.invalid("idle ratios must be 0...\(APILimits.ratioScale) parts per million")
            }
            // Written in batches (one transaction, one fsync, per flush): a fleet's heartbeats
            // would otherwise cost one fsync each.
            batcher.add(CascadeStore.Heartbeat(
                agentID: id, cpuIdle: heartbeat.idle.cpu, memoryIdle: heartbeat.idle.memory,
                mainVersion: heartbeat.mainVersion.isEmpty ? nil : heartbeat.mainVersion,
                upgraderVersion: heartbeat.upgraderVersion.isEmpty ? nil : heartbeat.upgraderVersion))
        }
        if let progress = report.progress { await apply(progress, from: id, reportedBy: id) }
        if let cluster = report.cluster { await applyClusterReport(cluster, from: id) }
    }

    /// A leader's batch: its members' progress. A leader speaks only for members of its own
    /// cluster; other ids in the batch are ignored and logged.
    private func applyClusterReport(_ report: ClusterReport, from leaderID: String) async {
        let members = try? await store.run { store throws(StoreError) -> Set<String>? in
            guard let leader = try store.agent(id: leaderID),
                  let cluster = try store.cluster(id: leader.clusterID), cluster.leaderID == leaderID else { return nil }
            return Set(try store.agents(inCluster: cluster.id).map(\.id))
        }
        guard let members = members ?? nil else {
            log("ignored a cluster report from \(leaderID), which does not lead a cluster")
            return
        }
        for status in report.members {
            guard let progress = status.progress, status.agentID != leaderID else { continue }
            guard members.contains(status.agentID) else {
                log("ignored \(leaderID)'s report for \(status.agentID), which is not in its cluster")
                continue
            }
            await apply(progress, from: status.agentID, reportedBy: leaderID)
        }
    }

    /// Records an agent's rollout progress. Late, repeated or out-of-order reports are normal
    /// (two paths, reconnects) and only logged when they are refused.
    func apply(_ progress: AgentProgress, from agentID: String, reportedBy reporter: String) async {
        guard progress.rolloutID > 0, let state = progress.state.storeState else { return }
        let rolloutID = Int64(clamping: progress.rolloutID)
        let bytes = Int64(clamping: progress.bytesDone)
        let error = progress.error.isEmpty ? nil : progress.error
        do {
            try await store.run { store throws(StoreError) in
                guard let row = try store.rolloutAgent(rolloutID: rolloutID, agentID: agentID) else { return }
                if row.state != state && row.state.canTransition(to: state) {
                    _ = try store.transitionRolloutAgent(
                        rolloutID: rolloutID, agentID: agentID, to: state, error: error, actor: .agent(reporter))
                }
                if state == .downloading { try store.recordDownloadProgress(rolloutID: rolloutID, agentID: agentID, bytes: bytes) }
            }
        } catch {
            log("progress of \(agentID) in rollout \(rolloutID) (\(state.rawValue)) not recorded: \(error.message)")
        }
    }

    /// Tells every connected agent of a cluster about its new leader, and gives the new leader
    /// the cluster's rollout order at once instead of at the next engine step.
    func announce(_ change: LeaderChange) async {
        log("cluster \(change.prefix): leader \(change.previousLeaderID ?? "none") → \(change.leaderID ?? "none") (epoch \(change.epoch)): \(change.reason)")
        let (assignments, members) = (try? await store.run { store throws(StoreError) -> ([AgentAssignment], [String]) in
            let agents = try store.agents(inCluster: change.clusterID)
            return (try agents.map { agent throws(StoreError) in try store.assignment(agentID: agent.id) }, agents.map(\.id))
        }) ?? ([], [])
        for assignment in assignments {
            let current = message(for: assignment, members: members)
            hub.send(Instruction(leaderEpoch: current.leaderEpoch, assignment: current), to: assignment.agent.id)
        }
        engine.memory.withLock { memory in
            for key in memory.orders.keys where key.cluster == change.clusterID { memory.orders[key] = nil }
        }
        await step()
    }

    private func fetchChunks(_ request: FetchChunksRequest, _ writer: StreamWriter<Chunk>, caller: String) async throws {
        let (record, cluster) = try await mapped {
            try await store.run { store throws(StoreError) in
                (try store.release(version: request.version), try store.agent(id: caller)?.clusterPrefix ?? "")
            }
        }
        guard let record, record.isComplete else { throw APIError.unknownRelease(request.version) }
        if let digest = request.artifactSHA256, digest != record.release.blobDigest {
            throw APIError.invalid("release \(request.version) has a different artifact digest than the caller expects")
        }
        let manifest = try manifests.manifest(for: record)
        let first = Int(request.firstIndex)
        guard first <= manifest.chunkCount else {
            throw RPCError(.outOfRange, "release \(request.version) has \(manifest.chunkCount) chunks; there is no chunk \(first)")
        }
        let end = request.maxChunks == 0 ? manifest.chunkCount : min(manifest.chunkCount, first + Int(request.maxChunks))
        let file = try mapped { try blobs.open(record.release.blobDigest) }
        for index in first..<end {
            // Read on credit: a chunk is read only once the agent's window can take it, so an
            // agent that gives no credit costs a parked task, not a chunk per stream.
            try await writer.waitForWindow(bytes: manifest.size(ofChunk: index) + 128)
            let data = try mapped { try file.read(offset: Int64(manifest.offset(ofChunk: index)), length: manifest.size(ofChunk: index)) }
            try await writer.write(Chunk(index: UInt32(index), data: data, sha256: manifest.chunkHashes[index]))
            metrics.chunkBytesServed.add(UInt64(data.count), ordering: .relaxed)
            metrics.addClusterBytes(UInt64(data.count), version: request.version, cluster: cluster)
        }
    }

    /// A member got a bad chunk: recorded against the source, and after repeated bad chunks
    /// from a leader, the leader is replaced. The member fetches from the coordinator meanwhile.
    private func reportFault(_ report: FaultReport, _ context: ServerContext) async throws -> FetchHint {
        let reporter = try Self.agentID(context)
        let limit = configuration.badChunkLimit
        let change = try await mapped {
            try await store.run { store throws(StoreError) -> LeaderChange? in
                _ = try store.appendEvent(
                    actor: .agent(reporter), kind: "rollout.bad-chunk", subject: EventSubject.agent(report.sourceID),
                    detail: "chunk \(report.chunkIndex) of \(report.releaseVersion) from \(report.sourceID) failed its check at \(reporter): \(report.detail)")
                let count = try store.events(kind: "rollout.bad-chunk", subject: EventSubject.agent(report.sourceID)).count
                guard count >= limit, let source = try store.agent(id: report.sourceID),
                      let cluster = try store.cluster(id: source.clusterID), cluster.leaderID == source.id else { return nil }
                let others = try store.agents(inCluster: cluster.id).filter { $0.id != source.id && $0.isLive }
                guard let next = LeaderElection.best(others.map { LeaderCandidate(id: $0.id, weight: $0.weight, isLive: $0.isLive) }) else { return nil }
                return try store.moveLeader(
                    clusterID: cluster.id, to: next.id, reason: "\(source.id) served \(count) bad chunks", actor: .coordinator())
            }
        }
        if let change { await announce(change) }
        return FetchHint(rolloutID: report.rolloutID, source: .coordinator, reason: "fetch from the coordinator after a bad chunk from \(report.sourceID)")
    }
}
