import CascadeLog
import CascadeAPI
import CascadeRPC
import CascadeStore

/// Rollouts: start, pause, resume, abort, status, watch, list. Operators only.
extension Coordinator {
    func registerRolloutMethods(on router: RPCRouter) {
        router.unary(OperatorService.startRollout) { request, context in
            try await self.startRollout(request, context)
        }
        router.unary(OperatorService.pauseRollout) { request, context in
            try await self.transition(request, to: .paused, action: "pause", context)
        }
        router.unary(OperatorService.resumeRollout) { request, context in
            try await self.transition(request, to: .running, action: "resume", context)
        }
        router.unary(OperatorService.abortRollout) { request, context in
            let status = try await self.transition(request, to: .aborted, action: "abort", context)
            await self.announceAbort(Int64(clamping: request.rolloutID), reason: request.reason)
            return status
        }
        router.unary(OperatorService.getRollout) { query, _ in
            try await self.status(query.rolloutID, includeAgents: query.includeAgents)
        }
        router.serverStreaming(OperatorService.watchRollout) { query, writer, _ in
            try await self.watch(query, writer)
        }
        router.unary(OperatorService.listRollouts) { request, _ in
            let ids = try await mapped {
                try await self.store.run { store throws(StoreError) in try store.rollouts().map(\.id) }
            }
            var rollouts: [RolloutStatus] = []
            let limit = request.limit == 0 ? 20 : Int(request.limit)
            for id in ids.reversed() where request.beforeID == 0 || UInt64(id) < request.beforeID {
                rollouts.append(try await self.status(UInt64(id), includeAgents: false))
                if rollouts.count == limit { break }
            }
            return ListRolloutsResponse(rollouts: rollouts)
        }
    }

    /// The longest `client_token` kept; a token is a retry key, not data.
    static let maxClientTokenBytes = 128

    /// The rollout an earlier `StartRollout` with the same client token created, if any: a retry
    /// of a call whose outcome the client never learnt gets that rollout, not a second one or
    /// "another rollout is active" (services.md §3.7). A token reused for another release is
    /// refused, so a mistake is not answered with an unrelated rollout.
    private static func earlier(_ request: StartRolloutRequest, actor: EventActor, in store: CoordinatorStore) throws(StoreError) -> Int64? {
        guard let first = try store.rollout(clientToken: request.clientToken, createdBy: actor) else { return nil }
        guard first.releaseVersion == request.releaseVersion else {
            throw StoreError(.invalidArgument,
                "client token \(request.clientToken) already started rollout \(first.id) of release \(first.releaseVersion), not \(request.releaseVersion); use a new token for a new rollout")
        }
        return first.id
    }

    /// The lowest version (§4.4 order) the agents in the rollout's scope run now: the rollout's
    /// `from_version`. Versions that do not parse are left out; empty when none does.
    private static func lowestVersion(in policy: CascadeStore.RolloutPolicy, store: CoordinatorStore) throws(StoreError) -> String {
        let scope = Set(try RolloutPlanner.plan(policy: policy, clusters: try store.clusters()).map(\.clusterID))
        let versions = try store.agents().filter { scope.contains($0.clusterID) }
            .compactMap { agent in (try? ReleaseVersion(agent.mainVersion)).map { ($0, agent.mainVersion) } }
        return versions.min { $0.0 < $1.0 }?.1 ?? ""
    }

    private func startRollout(_ request: StartRolloutRequest, _ context: ServerContext) async throws -> RolloutStatus {
        let actor = EventActor.operator(context.peer?.id ?? "unknown")
        guard request.clientToken.utf8.count <= Self.maxClientTokenBytes else {
            throw APIError.invalid("a client token is at most \(Self.maxClientTokenBytes) bytes, not \(request.clientToken.utf8.count)")
        }
        // A retry answers at once, whatever became of the rollout since.
        if let id = try await mapped({ try await store.run { store throws(StoreError) in try Self.earlier(request, actor: actor, in: store) } }) {
            return try await status(UInt64(id), includeAgents: false)
        }
        let policy = CascadeStore.RolloutPolicy(
            clusters: request.clusters, maxUnavailable: Int(request.policy.effectiveMaxUnavailable),
            maxParallelClusters: Int(request.policy.effectiveMaxParallelClusters), canaryClusters: Int(request.policy.canaryClusters),
            failureBudgetPercent: Int(request.policy.failureBudgetPercent),
            healthTimeoutSeconds: Int(request.policy.effectiveHealthTimeoutSeconds),
            rollback: request.policy.rollback || request.downgrade != nil, downgrade: request.downgrade?.serializedBytes() ?? [])
        let target: ReleaseVersion
        do {
            target = try ReleaseVersion(request.releaseVersion)
        } catch {
            throw error.rpcError
        }
        let verifier = self.verifier
        // Verified where it rests before anything is recorded: a damaged release is refused now,
        // not found out by the leaders one failed fetch at a time.
        let (checked, bad) = try await verifyStored(request.releaseVersion, actor: actor)
        if !bad.isEmpty || !checked.damage.isEmpty {
            throw RPCError(.failedPrecondition, "release \(request.releaseVersion) is damaged: \(checked.damage)")
        }
        let id = try await mapped {
            try await store.run { store throws(StoreError) -> Int64 in
                // Checked again where the rollout is created: two concurrent calls with one
                // token create one rollout (the store runs one closure at a time).
                if let id = try Self.earlier(request, actor: actor, in: store) { return id }
                guard let release = try store.release(version: request.releaseVersion) else {
                    throw StoreError(.notFound, "no release \(request.releaseVersion); push it first")
                }
                guard release.isComplete else {
                    throw StoreError(.failedPrecondition, "release \(request.releaseVersion) is not completely pushed yet")
                }
                if let active = try store.activeRollouts().first {
                    throw StoreError(.failedPrecondition, "rollout \(active.id) (\(active.releaseVersion)) is still \(active.state.rawValue); finish or abort it first")
                }
                let fromVersion = try Self.lowestVersion(in: policy, store: store)
                // Going down needs a downgrade authorisation signed offline by a release key
                // (services.md §4.5); the agents check it again, this only fails early.
                // Only the agents in the rollout's scope count: an agent elsewhere (perhaps one
                // that lies about its version) cannot turn another cluster's rollout into a downgrade.
                let scope = Set(request.clusters)
                let newer = try store.agents().compactMap { agent -> (AgentRecord, ReleaseVersion)? in
                    guard scope.isEmpty || scope.contains(agent.clusterPrefix),
                          let running = try? ReleaseVersion(agent.mainVersion), running > target else { return nil }
                    return (agent, running)
                }
                if let highest = newer.max(by: { $0.1 < $1.1 })?.0 {
                    guard let downgrade = request.downgrade else {
                        let count = newer.count == 1 ? "1 agent runs" : "\(newer.count) agents run"
                        throw StoreError(.failedPrecondition,
                            "\(count) a version newer than \(request.releaseVersion) (for example \(highest.id) on \(highest.mainVersion)); going down needs a downgrade authorisation: cascadectl release authorize-downgrade, then rollout start --downgrade FILE")
                    }
                    let authorization: DowngradeAuthorization
                    do {
                        try verifier.checkVersion(name: release.release.name, version: request.releaseVersion, floor: highest.mainVersion, downgrade: downgrade, now: UInt64(max(0, Timestamp.now().milliseconds / 1000)))
                        authorization = try verifier.verify(downgrade)
                    } catch {
                        throw StoreError(.failedPrecondition, "the downgrade authorisation cannot take \(highest.id) from \(highest.mainVersion) to \(request.releaseVersion): \(error)")
                    }
                    let rollout = try store.createRollout(
                        release: request.releaseVersion, policy: policy, actor: actor, clientToken: request.clientToken,
                        fromVersion: fromVersion)
                    // Which authorisation let it go down, in the audit log.
                    _ = try store.appendEvent(
                        actor: actor, kind: .rolloutDowngradeAuthorized, subject: EventSubject.rollout(rollout.id),
                        detail: "rollout \(rollout.id) goes down to \(authorization.toVersion) (from \(highest.mainVersion) at most \(authorization.fromVersion)) under an authorisation signed by key \(authorization.keyID), valid until unix time \(authorization.expiresAt)")
                    return rollout.id
                }
                if request.downgrade != nil {
                    throw StoreError(.failedPrecondition,
                        "no agent in scope runs a version above \(request.releaseVersion): this rollout does not go down; start it without --downgrade")
                }
                return try store.createRollout(
                    release: request.releaseVersion, policy: policy, actor: actor, clientToken: request.clientToken,
                    fromVersion: fromVersion).id
            }
        }
        Logs.rollouts.info("rollout \(id) of \(request.releaseVersion) requested by \(actor)", ["rollout": "\(id)", "release": request.releaseVersion, "actor": "\(actor)"])
        await step()
        return try await status(UInt64(id), includeAgents: false)
    }

    private func transition(
        _ request: RolloutControlRequest, to next: CascadeStore.RolloutState, action: String, _ context: ServerContext
    ) async throws -> RolloutStatus {
        let actor = EventActor.operator(context.peer?.id ?? "unknown")
        let id = Int64(clamping: request.rolloutID)
        let reason = request.reason.isEmpty ? "\(action) by \(actor)" : request.reason
        try await mapped {
            try await store.run { store throws(StoreError) in
                guard let rollout = try store.rollout(id: id) else { throw StoreError(.notFound, "no rollout \(id)") }
                guard rollout.state.canTransition(to: next) else {
                    throw StoreError(.illegalTransition, "rollout \(id) is \(rollout.state.rawValue) and cannot \(action)")
                }
                _ = try store.transitionRollout(id: id, to: next, reason: reason, actor: actor)
            }
        }
        Logs.rollouts.info("rollout \(id): \(action) by \(actor)", ["rollout": "\(id)", "actor": "\(actor)"])
        await step()
        return try await status(request.rolloutID, includeAgents: false)
    }

    /// An aborted rollout is no longer active, so the engine does not see it: tell the
    /// leaders of its clusters here, and the members still downloading (directly, so their
    /// downloads stop without waiting for the leader's relay).
    func announceAbort(_ id: Int64, reason: String) async {
        let sends = (try? await store.run { store throws(StoreError) -> [(String, Instruction)] in
            var sends: [(String, Instruction)] = []
            let control = RolloutControl(rolloutID: UInt64(id), action: .abort, reason: reason.isEmpty ? "aborted by an operator" : reason)
            for cluster in try store.rolloutClusters(rolloutID: id) {
                guard let record = try store.cluster(id: cluster.clusterID) else { continue }
                if let leader = record.leaderID {
                    sends.append((leader, Instruction(leaderEpoch: UInt64(record.leaderEpoch), control: control)))
                }
                for row in try store.rolloutAgents(rolloutID: id, clusterID: cluster.clusterID)
                where row.agentID != record.leaderID && (row.state == .instructed || row.state == .downloading) {
                    sends.append((row.agentID, Instruction(leaderEpoch: UInt64(record.leaderEpoch), control: control)))
                }
            }
            return sends
        }) ?? []
        for (agent, instruction) in sends { hub.send(instruction, to: agent) }
    }

    /// Rollout `rolloutID`, or the latest one when it is 0 (services.md).
    func status(_ rolloutID: UInt64, includeAgents: Bool) async throws -> RolloutStatus {
        let id = Int64(clamping: rolloutID)
        let connected = hub.connected
        let rolloutBytes = self.rolloutBytes
        return try await mapped {
            try await store.run { store throws(StoreError) -> RolloutStatus in
                let found = id == 0 ? try store.rollouts().last : try store.rollout(id: id)
                guard let rollout = found else {
                    throw StoreError(.notFound, id == 0 ? "there is no rollout yet" : "no rollout \(rolloutID)")
                }
                return try RolloutStatusBuilder(
                    store: store, connected: connected, bytes: rolloutBytes.clusters(rollout: rollout.id)
                ).status(rollout, includeAgents: includeAgents)
            }
        }
    }

    /// Sends a snapshot now and whenever it changes (at most every `minIntervalMs`, default
    /// 500 ms), ending after the rollout's final state.
    private func watch(_ query: RolloutQuery, _ writer: StreamWriter<RolloutStatus>) async throws {
        let interval = Duration.milliseconds(query.minIntervalMs == 0 ? 500 : max(100, Int(query.minIntervalMs)))
        var lastSent: RolloutStatus?
        let id = try await status(query.rolloutID, includeAgents: false).rolloutID
        while true {
            let current = try await status(id, includeAgents: query.includeAgents)
            // The timestamp alone changing is not news.
            var key = current
            key.updatedAtMs = 0
            if key != lastSent {
                try await writer.write(current)
                lastSent = key
            }
            if current.state.isTerminal { return }
            try await Task.sleep(for: interval)
        }
    }
}
