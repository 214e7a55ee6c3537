/// How a rollout proceeds, as the operator asked for it.
public struct RolloutPolicy: Hashable, Sendable {
    /// Cluster prefixes in scope, in the order to roll them out; empty means every cluster.
    public var clusters: [String]
    /// Members of one cluster upgrading at once (the leader's limit). Default 1.
    public var maxUnavailable: Int
    /// Clusters upgrading at once. Default 1.
    public var maxParallelClusters: Int
    /// The first N clusters form wave 0; the rest wait until it succeeds. Default 0.
    public var canaryClusters: Int
    /// Share of agents that may fail before the rollout fails, 0...100. Default 0.
    public var failureBudgetPercent: Int
    /// How long a restarted program has to report healthy. Default 120 s (services.md §3.4).
    public var healthTimeoutSeconds: Int
    /// An explicit, recorded downgrade to a lower version.
    public var rollback: Bool
    /// The operator's signed downgrade authorisation (an encoded `SignedDowngrade`, opaque
    /// here), sent to every agent of the rollout; empty when the rollout does not go down.
    public var downgrade: [UInt8]

    public init(
        clusters: [String] = [], maxUnavailable: Int = 1, maxParallelClusters: Int = 1, canaryClusters: Int = 0,
        failureBudgetPercent: Int = 0, healthTimeoutSeconds: Int = 120, rollback: Bool = false, downgrade: [UInt8] = []
    ) {
        self.clusters = clusters
        self.maxUnavailable = maxUnavailable
        self.maxParallelClusters = maxParallelClusters
        self.canaryClusters = canaryClusters
        self.failureBudgetPercent = failureBudgetPercent
        self.healthTimeoutSeconds = healthTimeoutSeconds
        self.rollback = rollback
        self.downgrade = downgrade
    }

    func validate() throws(StoreError) {
        func check(_ ok: Bool, _ message: String) throws(StoreError) {
            if !ok { throw StoreError(.invalidArgument, message) }
        }
        try check(maxUnavailable >= 1, "max unavailable must be at least 1, not \(maxUnavailable)")
        try check(maxParallelClusters >= 1, "max parallel clusters must be at least 1, not \(maxParallelClusters)")
        try check(canaryClusters >= 0, "canary clusters must not be negative (\(canaryClusters))")
        try check((0...100).contains(failureBudgetPercent), "the failure budget must be 0...100 percent, not \(failureBudgetPercent)")
        try check(healthTimeoutSeconds >= 1, "the health timeout must be at least 1 s, not \(healthTimeoutSeconds)")
    }
}

/// A cluster's place in a rollout: clusters start in `position` order, and the engine finishes
/// wave n before it starts wave n + 1.
public struct RolloutClusterPlan: Hashable, Sendable {
    public var clusterID: Int64
    public var wave: Int

    public init(clusterID: Int64, wave: Int) {
        self.clusterID = clusterID
        self.wave = wave
    }
}

public struct RolloutRecord: Hashable, Sendable {
    public var id: Int64
    public var releaseVersion: String
    public var policy: RolloutPolicy
    public var state: RolloutState
    /// Why it entered its current state (operator's words, or the engine's).
    public var stateReason: String?
    public var createdBy: EventActor
    public var createdAt: Timestamp
    public var startedAt: Timestamp?
    public var finishedAt: Timestamp?
    public var updatedAt: Timestamp
    /// The token the operator's client sent with `StartRollout` (empty: none), so a retry
    /// finds this rollout instead of starting another.
    public var clientToken: String = ""
    /// The lowest version the agents in scope ran when it was requested (empty: unknown).
    public var fromVersion: String = ""
}

public struct RolloutClusterRecord: Hashable, Sendable {
    public var rolloutID: Int64
    public var clusterID: Int64
    public var prefix: String
    public var position: Int
    /// 0-based here; the wire and cascadectl count waves from 1 (`waveNumber`).
    public var wave: Int
    public var state: RolloutClusterState
    public var reason: String?
    public var startedAt: Timestamp?
    public var finishedAt: Timestamp?
    public var updatedAt: Timestamp

    /// The wave as operators see it (services.md §6 `ClusterProgress.wave`): from 1, the
    /// canary clusters being wave 1.
    public var waveNumber: Int { wave + 1 }
}

public struct RolloutAgentRecord: Hashable, Sendable {
    public var rolloutID: Int64
    public var agentID: String
    public var clusterID: Int64
    public var state: RolloutAgentState
    /// Artifact bytes received so far (downloading).
    public var bytes: Int64
    public var enteredAt: Timestamp
    /// When the coordinator fails the agent if it is still in this state; nil when none applies.
    public var deadline: Timestamp?
    public var error: String?
}

/// Counts for status views.
public struct RolloutProgress: Hashable, Sendable {
    public var agents: [RolloutAgentState: Int]
    public var clusters: [RolloutClusterState: Int]
    public var bytes: Int64

    public var agentTotal: Int { agents.values.reduce(0, +) }
}
