import CascadeAgentRuntime
import CascadeAPI
import CascadeHTTP
import CascadeLog
import CascadeMetrics
import CascadeNet
import CascadeUpgrader
import Synchronization

private let log = Logger("metrics")

/// The agent's `/metrics` (fleet.conf `metrics-listen`): the fleet runtime's counters, which
/// outlive each runtime the main program builds, what the current runtime says now, and the
/// process. Started, moved or stopped as fleet.conf says each time it is read.
final class AgentMetricsServer: Sendable {
    let metrics = RuntimeMetrics()
    let link: FleetLinkPublisher
    private let runtime = Mutex<AgentRuntime?>(nil)
    private let server = Mutex<(requested: SocketAddress, server: HTTPServer)?>(nil)

    init(link: FleetLinkPublisher) {
        self.link = link
    }

    /// The runtime whose state the gauges show (nil between runtimes).
    func attach(_ current: AgentRuntime?) {
        runtime.withLock { $0 = current }
    }

    /// Serves at `address` (nil: stops serving). A failure is logged and tried again at the
    /// next read of fleet.conf; it never keeps the agent out of the fleet.
    func serve(at address: SocketAddress?) {
        let old = server.withLock { current -> HTTPServer? in
            guard current?.requested != address else { return nil }
            defer { current = nil }
            return current?.server
        }
        if let old { Task { await old.shutdown() } }
        guard let address, server.withLock({ $0 == nil }) else { return }
        do {
            let started = try HTTPServer(bindingTo: address, routes: ["/metrics": { [weak self] _ in
                guard let self else { return .text(503, "the agent is stopping") }
                return HTTPResponse(status: 200, contentType: ExpositionWriter.contentType, body: self.exposition())
            }])
            started.start()
            server.withLock { $0 = (address, started) }
            log.info("metrics on http://\(started.localAddress)/metrics", ["address": "\(started.localAddress)"])
            if !HTTPListenAddress.isLoopback(started.localAddress) {
                log.warning("metrics on \(started.localAddress) are reachable from the network without TLS or authentication")
            }
        } catch {
            log.error("cannot serve metrics on \(address): \(error.message); check \"metrics-listen\" in fleet.conf")
        }
    }

    func exposition() -> String {
        var out = ExpositionWriter()
        let status = runtime.withLock { $0 }?.status
        let joined = link.current?.state == .joined
        out.gauge("cascade_agent_fleet_joined", help: "1 while the agent is registered with the coordinator, else 0.", joined ? 1 : 0)
        let role: String
        switch status?.role {
        case .leader?: role = "leader"
        case .member?: role = "member"
        default: role = "none"
        }
        out.family("cascade_agent_role", .gauge, help: "1 for the agent's role in its cluster (leader, member, none before an assignment).",
                   labels: ["role"], values: ["leader", "member", "none"].map { ([$0], $0 == role ? 1 : 0) })
        if let status {
            out.family("cascade_agent_info", .gauge, help: "The agent's id, cluster and main program version (always 1).",
                       labels: ["agent", "cluster", "version"], values: [([status.agentID, status.clusterID, status.mainVersion], 1)])
            out.gauge("cascade_agent_leader_epoch", help: "The leader epoch of the agent's current assignment.", Double(status.epoch))
            if let progress = status.progress {
                out.family("cascade_agent_rollout_state", .gauge, help: "1 for this agent's own state in its latest rollout.",
                           labels: ["rollout", "release", "state"],
                           values: [([String(progress.rolloutID), progress.releaseVersion, "\(progress.state)"], 1)])
            }
            if let leader = status.leader {
                var counts: [String: Int] = [:]
                for state in leader.memberStates.values { counts["\(state)", default: 0] += 1 }
                out.family("cascade_agent_members", .gauge, help: "As a leader: its members in the rollout it runs, by state.",
                           labels: ["rollout", "state"], values: counts.sorted { $0.key < $1.key }.map { ([String(leader.rolloutID), $0.key], Double($0.value)) })
                out.gauge("cascade_agent_members_connected", help: "As a leader: members connected to it now.", Double(leader.connectedMembers.count))
            }
        }
        out.counter("cascade_registrations_total", help: "Registrations the coordinator accepted from this agent.", Double(metrics.registrations.value))
        out.counter("cascade_heartbeats_total", help: "Reports (heartbeats and progress) sent on the coordinator session.", Double(metrics.heartbeats.value))
        out.counter("cascade_leader_changes_total", help: "Times the agent's cluster got another leader.", Double(metrics.leaderChanges.value))
        out.counter("cascade_release_bytes_received_total", help: "Verified release artifact bytes stored, by release and source (coordinator, leader).",
                    metrics.bytesReceived)
        out.counter("cascade_release_bytes_served_total", help: "As a leader: release artifact bytes sent to members, by release.", metrics.bytesServed)
        out.counter("cascade_chunk_verification_failures_total", help: "Chunks that failed their SHA-256 check here and were discarded, by source (coordinator, leader).",
                    metrics.chunkVerificationFailures)
        out.counter("cascade_tls_handshakes_total", help: "TLS handshakes on the member server by outcome (accepted, refused) and reason.",
                    metrics.rpc.handshakes)
        out.counter("cascade_rpc_calls_total", help: "Calls to the member server (cascade.Leader) by method and final status code.", metrics.rpc.calls)
        out.histogram("cascade_rpc_call_duration_seconds", help: "Member server call duration by method.", metrics.rpc.latency)
        ProcessSample.current()?.write(to: &out)
        return out.text
    }
}
