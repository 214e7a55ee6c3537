import CascadeLog
import CascadeAPI
import CascadeCrypto
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
                      record.isComplete, !record.isDeleted
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
        let address: String
        do {
            address = try placementAddress(claimed: request.address, endpoint: context.endpoint, agentID: id)
        } catch let error as RPCError where error.code == .permissionDenied {
            // A registration from the wrong place is a security event, not just a failed call
            // (logged, rate-limited, with every PERMISSION_DENIED: SecurityLog).
            _ = try? await store.run { store throws(StoreError) in
                try store.appendEvent(actor: .agent(id), kind: .securityRegistrationRefused, subject: EventSubject.agent(id), detail: error.message)
            }
            throw error
        }
        guard request.memberPort > 0, request.memberPort <= UInt32(UInt16.max) else {
            throw APIError.invalid("the member port \(request.memberPort) is not a TCP port")
        }
        // What an agent says about itself reaches operators' screens: only the grammar passes.
        try Self.checkVersions(main: request.mainVersion, upgrader: request.upgraderVersion, mainRequired: true)
        guard request.hostname.isEmpty || AgentText.isValidHostname(request.hostname) else {
            throw APIError.invalid("the host name \"\(AgentText.freeText(request.hostname, limit: 64))\" is not an RFC 1123 host name")
        }
        metrics.registrations.add(1, ordering: .relaxed)
        let registration = AgentRegistration(
            id: id, address: address, port: Int(request.memberPort), mainVersion: request.mainVersion,
            upgraderVersion: request.upgraderVersion, cpuIdle: request.idle.cpu, memoryIdle: request.idle.memory,
            hostname: request.hostname)
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

    /// Versions an agent reports must follow services.md §4.4's grammar (empty: not known,
    /// except a registration's main version).
    static func checkVersions(main: String, upgrader: String, mainRequired: Bool) throws {
        for (program, version) in [("main", main), ("upgrader", upgrader)] where !AgentText.isAcceptableVersion(version) {
            throw APIError.invalid("the \(program) version \"\(AgentText.freeText(version, limit: 64))\" is not a version (services.md §4.4)")
        }
        if mainRequired && main.isEmpty { throw APIError.invalid("the main version is empty") }
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
        let hub = self.hub
        let pump = Task {
            for await instruction in instructions {
                do { try await writer.write(instruction) } catch { return }
            }
            // The hub let go of this session. If a newer session of the same agent took its
            // place, this one ends now with ABORTED (services.md §3.2) rather than staying open
            // and silent; at shutdown it ends with the server.
            if hub.wasReplaced(token) {
                writer.finish(with: RPCError(.aborted, "agent \(id) opened a new session, which replaces this one"))
            }
        }
        defer { pump.cancel() }
        // Tell the agent where it stands now; a restarted coordinator's agents learn it here.
        if let current = try? await assignmentView(id) {
            hub.send(Instruction(leaderEpoch: current.leaderEpoch, assignment: current), to: id)
            // And what its active rollout installs, so its leader's orders can be checked.
            if let (expectation, paused) = try? await activeExpectation(for: id) {
                hub.send(Instruction(leaderEpoch: current.leaderEpoch, expectation: expectation), to: id)
                // After it: an expectation alone reads as "running" on the agent.
                if paused {
                    hub.send(Instruction(leaderEpoch: current.leaderEpoch, control: RolloutControl(
                        rolloutID: expectation.rolloutID, action: .pause, reason: "paused by an operator")), to: id)
                }
            }
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

    /// The expectation of the active rollout `agentID` still has work in, if any, and whether
    /// that rollout is paused.
    func activeExpectation(for agentID: String) async throws -> (RolloutExpectation, paused: Bool)? {
        try await store.run { store throws(StoreError) -> (RolloutExpectation, paused: Bool)? in
            for rollout in try store.activeRollouts() {
                guard let row = try store.rolloutAgent(rolloutID: rollout.id, agentID: agentID), !row.state.isTerminal,
                      let release = try store.release(version: rollout.releaseVersion) else { continue }
                return (rollout.expectation(release), rollout.state == .paused)
            }
            return nil
        }
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
            Logs.agents.warning("cannot mark \(id) offline: \(error.message)")
        }
    }

    private func handle(_ report: AgentReport, from id: String) async throws {
        if let heartbeat = report.heartbeat {
            try Self.checkVersions(main: heartbeat.mainVersion, upgrader: heartbeat.upgraderVersion, mainRequired: false)
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
        if let progress = report.progress {
            // "Healthy on V" counts only from an agent that says, in the same report, it runs V.
            if progress.state == .healthy, let running = report.heartbeat?.mainVersion, !running.isEmpty,
               running != progress.releaseVersion {
                Logs.agents.warning("\(id) reported healthy on \(progress.releaseVersion) in rollout \(progress.rolloutID) while it runs \(running); not recorded")
            } else {
                await apply(progress, from: id, reportedBy: id)
            }
        }
        if let running = report.heartbeat?.mainVersion, !running.isEmpty, versions.changed(id, to: running) {
            await reconcileRecord(of: id, runs: running)
        }
        if let cluster = report.cluster { await applyClusterReport(cluster, from: id) }
    }

    /// The record follows what an agent runs: when an agent reports running a version below the
    /// release it was last recorded healthy on, its upgrader rolled it back after it had said
    /// healthy, and the row is corrected (with an event). Checked only when a version changes.
    func reconcileRecord(of agentID: String, runs running: String) async {
        do {
            let corrected = try await store.run { store throws(StoreError) -> [Int64] in
                // Only the latest rollout the agent was healthy in speaks for what it runs now.
                for rollout in try store.rollouts().suffix(5).reversed() {
                    guard let row = try store.rolloutAgent(rolloutID: rollout.id, agentID: agentID), row.state == .healthy else { continue }
                    // Below the release it was healthy on: rolled back. (Above it: it moved on.)
                    guard let now = try? ReleaseVersion(running), let target = try? ReleaseVersion(rollout.releaseVersion), now < target,
                          try store.correctHealthy(rolloutID: rollout.id, agentID: agentID, runs: running, actor: .agent(agentID)) != nil
                    else { return [] }
                    return [rollout.id]
                }
                return []
            }
            for id in corrected { Logs.agents.warning("rollout \(id): \(agentID) runs \(running); its healthy record is corrected to rolled-back", ["rollout": "\(id)", "agent": agentID]) }
        } catch {
            Logs.agents.error("cannot reconcile the record of \(agentID): \(error.message)")
        }
    }

    /// A leader's batch: its members' progress. A leader speaks only for members of its own
    /// cluster; other ids in the batch are ignored and logged.
    private func applyClusterReport(_ report: ClusterReport, from leaderID: String) async {
        let rolloutID = Int64(clamping: report.rolloutID)
        let found = try? await store.run { store throws(StoreError) -> (members: Set<String>, prefix: String, inRollout: Bool)? in
            guard let leader = try store.agent(id: leaderID),
                  let cluster = try store.cluster(id: leader.clusterID), cluster.leaderID == leaderID else { return nil }
            var inRollout = false
            if rolloutID > 0 { inRollout = try store.rolloutAgent(rolloutID: rolloutID, agentID: leaderID) != nil }
            return (Set(try store.agents(inCluster: cluster.id).map(\.id)), cluster.prefix, inRollout)
        }
        guard let (members, prefix, inRollout) = found ?? nil else {
            Logs.agents.warning("ignored a cluster report from \(leaderID), which does not lead a cluster")
            return
        }
        // What the leader says it served is the leader's own count: the coordinator sees no
        // leader-to-member traffic (services.md §3.4).
        if inRollout { rolloutBytes.leaderServed(report.bytesServed, rollout: rolloutID, cluster: prefix, leader: leaderID) }
        for status in report.members {
            guard let progress = status.progress, status.agentID != leaderID else { continue }
            guard members.contains(status.agentID) else {
                Logs.agents.warning("ignored \(leaderID)'s report for \(status.agentID), which is not in its cluster")
                continue
            }
            // A leader's relay is advisory: only the agent itself can end its part of a rollout
            // (healthy, failed, rolled back), so a leader cannot finish upgrades on paper.
            if progress.state.storeState?.isTerminal ?? true { continue }
            await apply(progress, from: status.agentID, reportedBy: leaderID)
        }
    }

    /// Records an agent's rollout progress. Late, repeated or out-of-order reports are normal
    /// (two paths, reconnects) and only logged when they are refused.
    func apply(_ progress: AgentProgress, from agentID: String, reportedBy reporter: String) async {
        guard progress.rolloutID > 0, let state = progress.state.storeState else { return }
        let rolloutID = Int64(clamping: progress.rolloutID)
        let bytes = Int64(clamping: progress.bytesDone)
        let error = progress.error.isEmpty ? nil : AgentText.freeText(progress.error)
        do {
            let failed = try await store.run { store throws(StoreError) -> Bool in
                guard let row = try store.rolloutAgent(rolloutID: rolloutID, agentID: agentID) else { return false }
                var failed = false
                if row.state != state && row.state.canTransition(to: state) {
                    _ = try store.transitionRolloutAgent(
                        rolloutID: rolloutID, agentID: agentID, to: state, error: error, actor: .agent(reporter))
                    failed = state == .failed || state == .rolledBack
                }
                if state == .downloading { try store.recordDownloadProgress(rolloutID: rolloutID, agentID: agentID, bytes: bytes) }
                return failed
            }
            // A failure may spend the budget: decide now, not at the next engine tick, so the
            // abort goes out before more installs start.
            if failed { await step() }
        } catch {
            Logs.agents.error("progress of \(agentID) in rollout \(rolloutID) (\(state.rawValue)) not recorded: \(error.message)")
        }
    }

    /// Tells every connected agent of a cluster about its new leader, and gives the new leader
    /// the cluster's rollout order at once instead of at the next engine step.
    func announce(_ change: LeaderChange) async {
        metrics.leaderChanges.add()
        Logs.agents.info("cluster \(change.prefix): leader \(change.previousLeaderID ?? "none") → \(change.leaderID ?? "none") (epoch \(change.epoch)): \(change.reason)", ["cluster": change.prefix, "leader": change.leaderID ?? "", "epoch": "\(change.epoch)"])
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

    /// The release a `FetchChunksRequest` names (services.md §3.1): by version, by artifact
    /// digest, or by both, which must then name the same release (NOT_FOUND otherwise, as for
    /// any release the coordinator does not have). A digest alone names the release holding that
    /// artifact, the complete one pushed first if several do.
    private func releaseToServe(_ request: FetchChunksRequest) async throws -> ReleaseRecord {
        let digest = request.artifactSHA256
        let named = request.version.isEmpty ? digest.map { "release with artifact \($0.hex)" } : "release \(request.version)"
        guard let named else { throw APIError.invalid("a chunk fetch must name a release by version, artifact SHA-256 or both") }
        let found = try await mapped {
            try await store.run { store throws(StoreError) -> ReleaseRecord? in
                if !request.version.isEmpty { return try store.release(version: request.version) }
                let holding = try store.releases().filter { $0.release.blobDigest == digest }
                return holding.first(where: \.isComplete) ?? holding.first
            }
        }
        guard let record = found, !record.isDeleted, digest == nil || digest == record.release.blobDigest else {
            if let digest, let record = found, !record.isDeleted {
                throw RPCError(.notFound, "release \(record.version) has artifact \(record.release.blobDigest.hex), not \(digest.hex)")
            }
            throw RPCError(.notFound, "the coordinator has no \(named)")
        }
        guard record.isComplete else {
            if !record.damage.isEmpty {
                throw RPCError(.failedPrecondition, "release \(record.version) is damaged: \(record.damage)")
            }
            throw RPCError(.failedPrecondition, "release \(record.version) is not completely pushed yet")
        }
        return record
    }

    private func fetchChunks(_ request: FetchChunksRequest, _ writer: StreamWriter<Chunk>, caller: String) async throws {
        let record = try await releaseToServe(request)
        let version = record.version
        // The bytes count for the cluster, in the active rollout of this release the caller is
        // part of (services.md §3.4); a fetch outside any rollout counts for none.
        let booking = try await mapped {
            try await store.run { store throws(StoreError) -> (rollout: Int64, cluster: String)? in
                guard let agent = try store.agent(id: caller) else { return nil }
                for rollout in try store.activeRollouts() where rollout.releaseVersion == version {
                    if try store.rolloutAgent(rolloutID: rollout.id, agentID: caller) != nil {
                        return (rollout.id, agent.clusterPrefix)
                    }
                }
                return nil
            }
        }
        let manifest = try manifests.manifest(for: record)
        let first = Int(request.firstIndex)
        guard first < manifest.chunkCount else {
            throw RPCError(.outOfRange, "release \(version) has \(manifest.chunkCount) chunks; there is no chunk \(first)")
        }
        let end = request.maxChunks == 0 ? manifest.chunkCount : min(manifest.chunkCount, first + Int(request.maxChunks))
        let file: BlobFile
        do {
            file = try blobs.open(record.release.blobDigest)
        } catch {
            throw await chunkFailedAtServe(version, index: first, error.message)
        }
        for index in first..<end {
            // Read on credit: a chunk is read only once the agent's window can take it, so an
            // agent that gives no credit costs a parked task, not a chunk per stream.
            try await writer.waitForWindow(bytes: manifest.size(ofChunk: index) + 128)
            let data: [UInt8]
            do {
                data = try file.read(offset: Int64(manifest.offset(ofChunk: index)), length: manifest.size(ofChunk: index))
            } catch {
                throw await chunkFailedAtServe(version, index: index, error.message)
            }
            // Verified before it leaves: a chunk damaged where it rests is never sent.
            guard data.count == manifest.size(ofChunk: index), SHA256.hash(data) == manifest.chunkHashes[index] else {
                throw await chunkFailedAtServe(version, index: index, "its SHA-256 is not the manifest's")
            }
            try await writer.write(Chunk(index: UInt32(index), data: data, sha256: manifest.chunkHashes[index]))
            metrics.chunkBytesServed.add(UInt64(data.count), ordering: .relaxed)
            metrics.releaseBytesServed.add(UInt64(data.count), record.version)
            if let booking { rolloutBytes.addFromCoordinator(UInt64(data.count), rollout: booking.rollout, cluster: booking.cluster) }
        }
    }

    /// A member got a bad chunk, or refused an order, from its leader. Every report is in the
    /// audit log; a leader is replaced only on confirmed evidence (services.md §3.1): reports
    /// from current members of its own cluster, counted as distinct reporters within the fault
    /// window of one rollout — at least `faultReportersToReplace` of them, or one while the
    /// leader's own session is down. The reporter fetches from the coordinator meanwhile.
    private func reportFault(_ report: FaultReport, _ context: ServerContext) async throws -> FetchHint {
        let reporter = try Self.agentID(context)
        let source = AgentText.freeText(report.sourceID, limit: 64)
        let rolloutID = Int64(clamping: report.rolloutID)
        let hint = FetchHint(rolloutID: report.rolloutID, source: .coordinator, reason: "fetch from the coordinator after a bad chunk from \(source.isEmpty ? "the coordinator" : source)")
        let detail = AgentText.freeText(report.detail, limit: 512)
        if !report.orderRefused { metrics.chunkVerificationFailures.add(1, source.isEmpty ? "coordinator" : "leader") }
        if source.isEmpty && !report.orderRefused && !report.releaseVersion.isEmpty {
            // The coordinator itself was the source: check what it holds (once at a time).
            _ = await chunkFailedAtServe(String(AgentText.freeText(report.releaseVersion, limit: 64)), index: Int(report.chunkIndex), "reported by \(reporter): \(detail)")
        }
        let verdict = try await mapped {
            try await store.run { store throws(StoreError) -> FaultVerdict in
                // Only a current member may accuse its cluster's current leader.
                let accused = try store.agent(id: source)
                let cluster = try accused.flatMap { agent throws(StoreError) in try store.cluster(id: agent.clusterID) }
                let reporterRecord = try store.agent(id: reporter)
                let counts = !source.isEmpty && source != reporter && cluster?.leaderID == source
                    && reporterRecord?.clusterID == accused?.clusterID
                if source.isEmpty && !report.orderRefused {
                    _ = try store.appendEvent(
                        actor: .agent(reporter), kind: .rolloutBadChunk, subject: EventSubject.release(String(AgentText.freeText(report.releaseVersion, limit: 64))),
                        refs: EventRefs(rollout: rolloutID),
                        detail: "chunk \(report.chunkIndex) of \(AgentText.freeText(report.releaseVersion, limit: 64)) from the coordinator failed at \(reporter): \(detail); the coordinator checked what it holds")
                    return .recorded
                }
                if report.orderRefused {
                    _ = try store.appendEvent(
                        actor: .agent(reporter), kind: .securityOrderRefused, subject: EventSubject.agent(source), refs: EventRefs(rollout: rolloutID),
                        detail: "\(reporter) refused an order from leader \(source.isEmpty ? "(none named)" : source) in rollout \(report.rolloutID) for release \(AgentText.freeText(report.releaseVersion, limit: 64)): \(detail)")
                    return .recorded
                }
                guard counts, let cluster else {
                    _ = try store.appendEvent(
                        actor: .agent(reporter), kind: .rolloutFaultIgnored, subject: EventSubject.agent(source), refs: EventRefs(rollout: rolloutID),
                        detail: "a fault report from \(reporter) against \(source.isEmpty ? "the coordinator" : source) was not counted: only members of a leader's own cluster report its chunks")
                    return .ignored
                }
                return .counted(clusterID: cluster.id)
            }
        }
        guard case .counted(let clusterID) = verdict else { return hint }
        let (fresh, reporters) = faults.record(
            leader: source, rolloutID: rolloutID, reporter: reporter, chunk: report.chunkIndex,
            now: .now, window: configuration.faultWindow)
        let leaderSilent = !hub.isConnected(source)
        let needed = configuration.faultReportersToReplace
        let confirmed = reporters >= needed || (leaderSilent && reporters >= 1)
        let change = try await mapped {
            try await store.run { store throws(StoreError) -> LeaderChange? in
                if fresh {
                    _ = try store.appendEvent(
                        actor: .agent(reporter), kind: .rolloutBadChunk, subject: EventSubject.agent(source), refs: EventRefs(rollout: rolloutID),
                        detail: "chunk \(report.chunkIndex) of \(AgentText.freeText(report.releaseVersion, limit: 64)) from \(source) failed its check at \(reporter): \(detail) (\(reporters) distinct reporters in rollout \(rolloutID))")
                }
                guard confirmed, let cluster = try store.cluster(id: clusterID), cluster.leaderID == source else { return nil }
                let others = try store.agents(inCluster: cluster.id).filter { $0.id != source && $0.isLive }
                guard let next = LeaderElection.best(others.map { LeaderCandidate(id: $0.id, weight: $0.weight, isLive: $0.isLive) }) else { return nil }
                let why = leaderSilent && reporters < needed
                    ? "\(source) served a bad chunk and its session is down"
                    : "\(reporters) members got bad chunks from \(source)"
                return try store.moveLeader(clusterID: cluster.id, to: next.id, reason: why, actor: .coordinator())
            }
        }
        if let change {
            faults.forget(leader: source)
            await announce(change)
        }
        return hint
    }
}

enum FaultVerdict: Sendable {
    case recorded, ignored
    case counted(clusterID: Int64)
}

/// Recent bad-chunk reports per (leader, rollout): who reported which chunks, and when. Kept
/// in memory — a restarted coordinator starts collecting evidence anew, which only delays a
/// replacement; the audit log keeps every report.
final class FaultLedger: Sendable {
    private struct Key: Hashable { let leader: String; let rollout: Int64 }
    private let reports = Mutex<[Key: [String: (at: ContinuousClock.Instant, chunks: Set<UInt32>)]]>([:])

    /// Records a report; returns whether it is new (not a repeat of the same chunk from the
    /// same reporter) and how many distinct reporters accuse the leader within the window.
    func record(leader: String, rolloutID: Int64, reporter: String, chunk: UInt32, now: ContinuousClock.Instant, window: Duration) -> (fresh: Bool, reporters: Int) {
        reports.withLock { all in
            let key = Key(leader: leader, rollout: rolloutID)
            var entries = all[key, default: [:]].filter { now - $0.value.at < window }
            var entry = entries[reporter] ?? (now, [])
            // A bounded memory per reporter, whatever it sends.
            let fresh = !entry.chunks.contains(chunk) && entry.chunks.count < 1024
            if fresh { entry.chunks.insert(chunk) }
            entry.at = now
            entries[reporter] = entry
            all[key] = entries
            if all.count > 10_000 { all = all.filter { !$0.value.isEmpty } }
            return (fresh, entries.count)
        }
    }

    func forget(leader: String) {
        reports.withLock { all in all = all.filter { $0.key.leader != leader } }
    }
}
