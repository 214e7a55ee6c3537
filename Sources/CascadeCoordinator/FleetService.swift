import CascadeAPI
import CascadeRPC
import CascadeStore

/// Fleet views and leader moves. Operators only.
extension Coordinator {
    func registerFleetMethods(on router: RPCRouter) {
        router.unary(OperatorService.listAgents) { request, _ in
            let connected = self.hub.connected
            return try await mapped {
                try await self.store.run { store throws(StoreError) -> ListAgentsResponse in
                    var agents = try store.agents().sorted { $0.id < $1.id }
                    if !request.clusterID.isEmpty { agents = agents.filter { $0.clusterPrefix == request.clusterID } }
                    if !request.afterAgentID.isEmpty { agents = agents.filter { $0.id > request.afterAgentID } }
                    let limit = request.limit == 0 ? 1000 : Int(request.limit)
                    let page = agents.prefix(limit).map { $0.info(connected: connected.contains($0.id)) }
                    return ListAgentsResponse(agents: Array(page), more: agents.count > limit)
                }
            }
        }
        router.unary(OperatorService.listClusters) { _, _ in
            let connected = self.hub.connected
            return try await mapped {
                try await self.store.run { store throws(StoreError) -> ListClustersResponse in
                    var infos: [ClusterInfo] = []
                    for cluster in try store.clusters() {
                        infos.append(try Self.info(cluster, store: store, connected: connected))
                    }
                    return ListClustersResponse(clusters: infos)
                }
            }
        }
        router.unary(OperatorService.moveLeader) { request, context in
            let actor = EventActor.operator(context.peer?.id ?? "unknown")
            let (change, info) = try await mapped {
                try await self.store.run { store throws(StoreError) -> (LeaderChange?, ClusterInfo) in
                    guard let cluster = try store.cluster(prefix: request.clusterID) else {
                        throw StoreError(.notFound, "no cluster \(request.clusterID)")
                    }
                    let change = try store.moveLeader(clusterID: cluster.id, to: request.agentID, reason: "operator request", actor: actor)
                    let moved = try store.cluster(id: cluster.id) ?? cluster
                    return (change, try Self.info(moved, store: store, connected: []))
                }
            }
            if let change { await self.announce(change) }
            return info
        }
        router.unary(OperatorService.listEvents) { request, _ in
            try await mapped {
                try await self.store.run { store throws(StoreError) -> ListEventsResponse in
                    let limit = request.limit == 0 ? 100 : min(Int(request.limit), 1000)
                    // Each filter matches the event's own rollout, cluster or agent (services.md §3.9).
                    let (rollout, cluster, agent, since) = (
                        request.rolloutID == 0 ? nil : Int64(clamping: request.rolloutID), request.clusterID.isEmpty ? nil : request.clusterID,
                        request.agentID.isEmpty ? nil : request.agentID, Timestamp(milliseconds: Int64(clamping: request.sinceMs)))
                    // Without after_id the operator wants the latest events (services.md §3.8); with
                    // it, the next page after what it already has. Both in increasing id order.
                    let records = request.afterID == 0
                        ? try store.recentEvents(limit: limit, rolloutID: rollout, cluster: cluster, agentID: agent, since: since)
                        : try store.events(
                            afterID: Int64(clamping: request.afterID), rolloutID: rollout, cluster: cluster, agentID: agent,
                            since: since, limit: limit)
                    return ListEventsResponse(events: records.map { record in
                        Event(
                            id: UInt64(record.id), atMs: record.time.unixMilliseconds, actor: record.actor.description,
                            kind: record.kind.rawValue, rolloutID: UInt64(max(0, record.rolloutID)),
                            clusterID: record.cluster, agentID: record.agentID, detail: record.detail)
                    })
                }
            }
        }
    }

    static func info(_ cluster: ClusterRecord, store: CoordinatorStore, connected: Set<String>) throws(StoreError) -> ClusterInfo {
        let agents = try store.agents(inCluster: cluster.id)
        let leader = agents.first { $0.id == cluster.leaderID }
        return ClusterInfo(
            clusterID: cluster.prefix, prefix: cluster.prefix, leaderID: cluster.leaderID ?? "",
            leaderAddress: leader?.memberAddress ?? "", leaderEpoch: UInt64(cluster.leaderEpoch),
            agentCount: UInt32(agents.count), connectedCount: UInt32(agents.filter { connected.contains($0.id) }.count),
            leaderSinceMs: cluster.updatedAt.unixMilliseconds)
    }
}
