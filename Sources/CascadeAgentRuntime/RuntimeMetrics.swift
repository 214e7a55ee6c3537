public import CascadeMetrics
public import CascadeRPC
import Synchronization

/// What an agent's fleet runtime counts for `/metrics` (the agent program serves them). One
/// instance can outlive runtimes: the program passes the same one to each runtime it builds
/// (`AgentRuntimeConfiguration.metrics`), so counters keep going up across rejoins.
public final class RuntimeMetrics: Sendable {
    /// Handshakes, calls and call latency of the member server (`cascade.Leader`).
    public let rpc = RPCMetrics()
    /// Verified artifact bytes stored, by release and source (`coordinator`, `leader`).
    public let bytesReceived = LabeledCounter(labels: ["release", "source"])
    /// As a leader: artifact bytes sent to members, by release.
    public let bytesServed = LabeledCounter(labels: ["release"])
    /// Chunks that failed their check here (discarded and reported), by source.
    public let chunkVerificationFailures = LabeledCounter(labels: ["source"])
    /// Registrations the coordinator accepted.
    public let registrations = Counter()
    /// Reports (heartbeats and progress) sent on the coordinator session.
    public let heartbeats = Counter()
    /// Times this agent's cluster got another leader (as its assignments said).
    public let leaderChanges = Counter()
    private let lastLeader = Mutex<String?>(nil)

    public init() {
        for source in ["coordinator", "leader"] { chunkVerificationFailures.add(0, source) }
    }

    /// An adopted assignment: a leader other than the last one seen counts as a change.
    func assigned(leaderID: String) {
        let changed = lastLeader.withLock { last -> Bool in
            defer { last = leaderID }
            return last != nil && last != leaderID
        }
        if changed { leaderChanges.add() }
    }
}
