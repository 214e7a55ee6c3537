import CascadeAPI
import CascadeCLI
import CascadeHTTP
import CascadeMetrics
public import CascadeNet
import CascadeStore
import Foundation
import Synchronization

/// The coordinator's read-only HTTP views: `/metrics` (Prometheus) on `--metrics-listen`, the
/// status page (`/`) and its data (`/status.json`) on `--status-listen`; one server when both
/// name the same address. Nothing here changes the fleet.
final class ViewServers: Sendable {
    typealias View = (requested: SocketAddress, server: HTTPServer)
    private let servers = Mutex<[View]>([])

    /// Starts serving the bound views.
    func start(_ bound: [View]) {
        for view in bound { view.server.start() }
        servers.withLock { $0 += bound }
    }

    var all: [View] { servers.withLock { $0 } }

    func stop() async {
        let stopping = servers.withLock { servers -> [View] in
            defer { servers = [] }
            return servers
        }
        for view in stopping { await view.server.shutdown() }
    }
}

extension Coordinator {
    /// Where `/metrics` is served, once started (nil when off).
    public var metricsAddress: SocketAddress? {
        guard let wanted = configuration.metricsAddress else { return nil }
        return views.all.first { $0.requested == wanted }?.server.localAddress
    }

    /// Where the status page is served, once started (nil when off).
    public var statusAddress: SocketAddress? {
        guard let wanted = configuration.statusAddress else { return nil }
        return views.all.first { $0.requested == wanted }?.server.localAddress
    }

    /// Binds the view listeners (not serving yet), so a port in use stops the start.
    func bindViews() throws -> [ViewServers.View] {
        var routes: [SocketAddress: [String: HTTPServer.Handler]] = [:]
        if let address = configuration.metricsAddress {
            routes[address, default: [:]]["/metrics"] = { [weak self] _ in
                guard let self else { return .text(503, "the coordinator is stopping") }
                return HTTPResponse(status: 200, contentType: ExpositionWriter.contentType, body: await self.metricsExposition())
            }
        }
        if let address = configuration.statusAddress {
            routes[address, default: [:]]["/"] = { _ in
                HTTPResponse(
                    status: 200, contentType: "text/html; charset=utf-8", body: StatusPage.html,
                    headers: [("Content-Security-Policy", StatusPage.contentSecurityPolicy)])
            }
            routes[address, default: [:]]["/status.json"] = { [weak self] _ in
                guard let self else { return .text(503, "the coordinator is stopping") }
                do {
                    return HTTPResponse(status: 200, contentType: "application/json; charset=utf-8", body: try await self.statusJSON())
                } catch {
                    return .text(503, "the coordinator cannot read its store now: \(error)")
                }
            }
        }
        do {
            // Sorted, so the servers (and the lines the program prints) come in a stable order.
            return try routes.sorted { "\($0.key)" < "\($1.key)" }.map { address, table in
                (address, try HTTPServer(bindingTo: address, routes: table))
            }
        } catch {
            throw CoordinatorError("cannot listen for HTTP views: \(error)")
        }
    }

    // MARK: - /metrics

    /// The scrape: every family, named and explained (README "Metrics" lists them).
    public func metricsExposition() async -> String {
        var out = ExpositionWriter()
        let connected = hub.connected
        out.gauge("cascade_sessions_open", help: "Agent sessions open now (agents connected to this coordinator).", Double(connected.count))
        out.gauge("cascade_rpc_connections_open", help: "RPC connections open now (agents and operators).",
                  Double(running.withLock { $0.server?.connectionCount ?? 0 }))
        out.counter("cascade_tls_handshakes_total", help: "TLS handshakes by outcome (accepted, refused) and reason "
                    + "(full, resumed; unknown_ca, certificate_expired, certificate_not_yet_valid, certificate_rejected, no_identity, timeout, closed_by_peer, protocol, io).",
                    metrics.rpc.handshakes)
        out.counter("cascade_rpc_calls_total", help: "RPC calls by method and final status code (unknown methods as \"unknown\").", metrics.rpc.calls)
        out.histogram("cascade_rpc_call_duration_seconds", help: "RPC call duration from the call's HEADERS to its end, by method (sessions last as long as they do).",
                      metrics.rpc.latency)
        out.counter("cascade_registrations_total", help: "Agent registrations received (Register calls past the placement check).", Double(metrics.registered))
        out.counter("cascade_registration_commits_total", help: "Store transactions that recorded registrations (batched).", Double(metrics.registrationCommits))
        out.counter("cascade_heartbeats_total", help: "Agent reports (heartbeats and progress) received on sessions.", Double(metrics.reports))
        out.counter("cascade_release_bytes_served_total", help: "Release artifact bytes sent to agents (FetchChunks), by release.", metrics.releaseBytesServed)
        out.counter("cascade_release_bytes_received_total", help: "Release artifact bytes received from operators (PushRelease), by release.",
                    metrics.releaseBytesReceived)
        out.counter("cascade_chunk_verification_failures_total", help: "Chunks that failed their SHA-256 check, by source: store (found damaged where they rest: before serving, at rollout start, on demand), "
                    + "push (pushed by an operator), coordinator or leader (reported by an agent that received it).",
                    metrics.chunkVerificationFailures)
        out.counter("cascade_leader_changes_total", help: "Cluster leader changes (elected, replaced, moved).", Double(metrics.leaderChanges.value))
        out.histogram("cascade_store_transaction_duration_seconds", help: "Store transactions (BEGIN to COMMIT or ROLLBACK), by outcome.",
                      metrics.storeTransactions)
        if let fleet = try? await fleetView(includeEvents: false) {
            let online = fleet.agents.filter { connected.contains($0.id) }.count
            out.family("cascade_agents", .gauge, help: "Registered agents by session: connected or disconnected.", labels: ["session"],
                       values: [(["connected"], Double(online)), (["disconnected"], Double(fleet.agents.count - online))])
            out.gauge("cascade_clusters", help: "Clusters (subnets with registered agents).", Double(fleet.clusters.count))
            var states: [([String], Double)] = []
            var agents: [([String], Double)] = []
            for rollout in fleet.rollouts {
                let id = String(rollout.record.id)
                for state in CascadeStore.RolloutState.allCases {
                    states.append(([id, rollout.record.releaseVersion, state.rawValue], rollout.record.state == state ? 1 : 0))
                }
                for state in RolloutAgentState.allCases {
                    agents.append(([id, state.rawValue], Double(rollout.agentStates.values.filter { $0 == state }.count)))
                }
            }
            out.family("cascade_rollout_state", .gauge, help: "1 for the state each active rollout (or else the latest) is in, 0 for the others.",
                       labels: ["rollout", "release", "state"], values: states)
            out.family("cascade_rollout_agents", .gauge, help: "Agents of each active rollout (or else the latest) by their state in it.",
                       labels: ["rollout", "state"], values: agents)
        }
        var responses: [Int: UInt64] = [:]
        for view in views.all {
            for (code, count) in view.server.responseCounts { responses[code, default: 0] += count }
        }
        out.family("cascade_http_responses_total", .counter, help: "Responses of the metrics and status listeners, by status code.",
                   labels: ["code"], values: responses.sorted { $0.key < $1.key }.map { ([String($0.key)], Double($0.value)) })
        ProcessSample.current()?.write(to: &out)
        return out.text
    }

    // MARK: - /status.json

    /// What the status page shows, read in one store transaction-free pass.
    struct FleetView: Sendable {
        struct Rollout: Sendable {
            var record: RolloutRecord
            var status: RolloutStatus
            var agentStates: [String: RolloutAgentState]
        }

        var clusters: [ClusterRecord]
        var agents: [AgentRecord]
        /// The active rollouts, or the latest one when none is active.
        var rollouts: [Rollout]
        var events: [EventRecord]
    }

    func fleetView(includeEvents: Bool) async throws -> FleetView {
        let connected = hub.connected
        let bytes = rolloutBytes
        return try await store.run { store throws(StoreError) -> FleetView in
            let all = try store.rollouts()
            var shown = all.filter { !$0.state.isTerminal }.sorted { $0.id < $1.id }
            if shown.isEmpty, let latest = all.max(by: { $0.id < $1.id }) { shown = [latest] }
            var rollouts: [FleetView.Rollout] = []
            for record in shown {
                let builder = RolloutStatusBuilder(store: store, connected: connected, bytes: bytes.clusters(rollout: record.id))
                let rows = try store.rolloutAgents(rolloutID: record.id)
                rollouts.append(FleetView.Rollout(
                    record: record, status: try builder.status(record, includeAgents: false),
                    agentStates: Dictionary(rows.map { ($0.agentID, $0.state) }, uniquingKeysWith: { _, last in last })))
            }
            return FleetView(
                clusters: try store.clusters().sorted { $0.prefix < $1.prefix }, agents: try store.agents(), rollouts: rollouts,
                events: includeEvents ? try store.recentEvents(limit: 25) : [])
        }
    }

    /// The page's data. Every string is JSON-escaped, and `<`, `>` and `&` are written as
    /// `\u003c`, `\u003e`, `\u0026`, so the document stays inert even if something treated it
    /// as HTML.
    func statusJSON() async throws -> String {
        let fleet = try await fleetView(includeEvents: true)
        let connected = hub.connected
        // The agent's state in the first shown rollout that includes it.
        var rolloutState: [String: String] = [:]
        for rollout in fleet.rollouts.reversed() {
            for (agent, state) in rollout.agentStates { rolloutState[agent] = state.rawValue }
        }
        let byCluster = Dictionary(grouping: fleet.agents, by: \.clusterID)
        let clusters: [JSONValue] = fleet.clusters.map { cluster in
            let members = (byCluster[cluster.id] ?? []).sorted { lhs, rhs in
                (lhs.id == cluster.leaderID ? 0 : 1, lhs.id) < (rhs.id == cluster.leaderID ? 0 : 1, rhs.id)
            }
            return .object([
                ("prefix", .string(cluster.prefix)),
                ("leader", .string(cluster.leaderID ?? "")),
                ("epoch", .int(cluster.leaderEpoch)),
                ("agents", .array(members.map { agent in
                    .object([
                        ("id", .string(agent.id)),
                        ("address", .string(agent.address)),
                        ("role", .string(agent.id == cluster.leaderID ? "leader" : "member")),
                        ("connected", .bool(connected.contains(agent.id))),
                        ("main_version", .string(agent.mainVersion)),
                        ("upgrader_version", .string(agent.upgraderVersion)),
                        ("hostname", .string(agent.hostname)),
                        ("last_seen", .string(agent.lastSeen.description)),
                        ("rollout_state", .string(rolloutState[agent.id])),
                    ])
                })),
            ])
        }
        let rollouts: [JSONValue] = fleet.rollouts.map { rollout in
            let status = rollout.status
            return .object([
                ("id", .int(rollout.record.id)),
                ("release", .string(rollout.record.releaseVersion)),
                ("state", .string(rollout.record.state.rawValue)),
                ("message", .string(rollout.record.stateReason ?? "")),
                ("created_by", .string(rollout.record.createdBy.description)),
                ("started_at", .string(rollout.record.startedAt?.description)),
                ("finished_at", .string(rollout.record.finishedAt?.description)),
                ("totals", Self.counts(status.totals)),
                ("clusters", .array(status.clusterProgress.map { cluster in
                    .object([
                        ("prefix", .string(cluster.clusterID)),
                        ("phase", .string(Self.phaseName(cluster.phase))),
                        ("wave", .int(cluster.wave)),
                        ("leader", .string(cluster.leaderID)),
                        ("counts", Self.counts(cluster.counts)),
                        ("message", .string(cluster.message)),
                    ])
                })),
            ])
        }
        let events: [JSONValue] = fleet.events.map { event in
            .object([
                ("id", .int(event.id)),
                ("at", .string(event.time.description)),
                ("actor", .string(event.actor.description)),
                ("kind", .string(event.kind.rawValue)),
                ("rollout", .int(event.rolloutID)),
                ("cluster", .string(event.cluster)),
                ("agent", .string(event.agentID)),
                ("detail", .string(event.detail)),
            ])
        }
        let document = JSONValue.object([
            ("generated_at", .string(Timestamp.now().description)),
            ("rollouts", .array(rollouts)),
            ("clusters", .array(clusters)),
            ("events", .array(events)),
        ])
        return Self.inertJSON(document.encoded())
    }

    static func inertJSON(_ text: String) -> String {
        // These characters occur only inside strings in JSON text, so replacing them is safe.
        text.replacingOccurrences(of: "<", with: "\\u003c").replacingOccurrences(of: ">", with: "\\u003e")
            .replacingOccurrences(of: "&", with: "\\u0026")
    }

    static func counts(_ counts: StateCounts) -> JSONValue {
        .object([
            ("pending", .int(counts.pending)), ("instructed", .int(counts.instructed)), ("downloading", .int(counts.downloading)),
            ("installing", .int(counts.installing)), ("healthy", .int(counts.healthy)), ("failed", .int(counts.failed)),
            ("rolled_back", .int(counts.rolledBack)),
        ])
    }

    /// The phase's own name; the page shows anything unset or newer than this build as "unknown".
    static func phaseName(_ phase: ClusterPhase) -> String {
        switch phase {
        case .unspecified, .unknown: "unknown"
        default: phase.description
        }
    }
}
