public import CascadeWire

/// `cascade.Operator/StartRollout` request.
public struct StartRolloutRequest: WireMessage, Hashable, Sendable {
    public var releaseVersion: String
    /// Cluster ids in scope; empty means every cluster.
    public var clusters: [String]
    public var policy: RolloutPolicy
    /// When set, a repeat with the same token returns the rollout the first call created
    /// instead of starting another (makes the call idempotent).
    public var clientToken: String
    /// Required when the release is lower than an agent's version in scope.
    public var downgrade: SignedDowngrade?

    public init(releaseVersion: String = "", clusters: [String] = [], policy: RolloutPolicy = RolloutPolicy(), clientToken: String = "",
                downgrade: SignedDowngrade? = nil) {
        self.releaseVersion = releaseVersion
        self.clusters = clusters
        self.policy = policy
        self.clientToken = clientToken
        self.downgrade = downgrade
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: releaseVersion = try field.string()
            case 2: try appendBounded(field.string(), to: &clusters, field: field)
            case 3: policy = try field.message()
            case 4: clientToken = try field.string()
            case 5: downgrade = try field.message()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, releaseVersion)
        writer.put(2, clusters)
        writer.putUnlessEmpty(3, policy)
        writer.put(4, clientToken)
        writer.put(5, downgrade)
    }
}

/// `PauseRollout`, `ResumeRollout` and `AbortRollout` request.
public struct RolloutControlRequest: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    /// Recorded in the events table and shown in the rollout's status.
    public var reason: String

    public init(rolloutID: UInt64 = 0, reason: String = "") {
        self.rolloutID = rolloutID
        self.reason = reason
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: reason = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, reason)
    }
}

/// `GetRollout` and `WatchRollout` request.
public struct RolloutQuery: WireMessage, Hashable, Sendable {
    /// 0 means the most recently created rollout.
    public var rolloutID: UInt64
    /// Include one row per agent (large for big fleets).
    public var includeAgents: Bool
    /// `WatchRollout` only: at most one snapshot per this many milliseconds; 0 means 1000.
    public var minIntervalMs: UInt32

    public init(rolloutID: UInt64 = 0, includeAgents: Bool = false, minIntervalMs: UInt32 = 0) {
        self.rolloutID = rolloutID
        self.includeAgents = includeAgents
        self.minIntervalMs = minIntervalMs
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: includeAgents = try field.bool()
            case 3: minIntervalMs = try field.uint32()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, includeAgents)
        writer.put(3, minIntervalMs)
    }
}

/// Agents per rollout state. Field n counts the agents in the state whose wire value is n.
public struct StateCounts: WireMessage, Hashable, Sendable {
    public var pending: UInt32
    public var instructed: UInt32
    public var downloading: UInt32
    public var installing: UInt32
    public var healthy: UInt32
    public var failed: UInt32
    public var rolledBack: UInt32

    public init(pending: UInt32 = 0, instructed: UInt32 = 0, downloading: UInt32 = 0, installing: UInt32 = 0,
                healthy: UInt32 = 0, failed: UInt32 = 0, rolledBack: UInt32 = 0) {
        self.pending = pending
        self.instructed = instructed
        self.downloading = downloading
        self.installing = installing
        self.healthy = healthy
        self.failed = failed
        self.rolledBack = rolledBack
    }

    /// The count for one state (0 for unspecified or unknown states).
    public subscript(state: AgentRolloutState) -> UInt32 {
        get {
            switch state {
            case .pending: pending
            case .instructed: instructed
            case .downloading: downloading
            case .installing: installing
            case .healthy: healthy
            case .failed: failed
            case .rolledBack: rolledBack
            case .unspecified, .unknown: 0
            }
        }
        set {
            switch state {
            case .pending: pending = newValue
            case .instructed: instructed = newValue
            case .downloading: downloading = newValue
            case .installing: installing = newValue
            case .healthy: healthy = newValue
            case .failed: failed = newValue
            case .rolledBack: rolledBack = newValue
            case .unspecified, .unknown: break
            }
        }
    }

    public var total: UInt64 {
        AgentRolloutState.allCases.reduce(0) { $0 + UInt64(self[$1]) }
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            // Fields 1...7 are the defined states; later fields are states this build does not know.
            guard field.number <= 7 else { continue }
            self[AgentRolloutState(wireValue: UInt32(field.number))] = try field.uint32()
        }
    }

    public func encode(to writer: inout MessageWriter) {
        for state in AgentRolloutState.allCases {
            writer.put(Int(state.wireValue), self[state])
        }
    }
}

/// One cluster's part of a rollout.
public struct ClusterProgress: WireMessage, Hashable, Sendable {
    public var clusterID: String
    public var phase: ClusterPhase
    public var leaderID: String
    public var leaderEpoch: UInt64
    public var counts: StateCounts
    /// Artifact bytes the coordinator sent this cluster (once, plus failover refetches).
    public var bytesFromCoordinator: UInt64
    /// Artifact bytes the cluster's leader served to its members.
    public var bytesServed: UInt64
    /// The wave the cluster runs in, from 1; canary clusters run in wave 1.
    public var wave: UInt32
    /// Why the cluster failed or is held, for people.
    public var message: String

    public init(clusterID: String = "", phase: ClusterPhase = .unspecified, leaderID: String = "", leaderEpoch: UInt64 = 0,
                counts: StateCounts = StateCounts(), bytesFromCoordinator: UInt64 = 0, bytesServed: UInt64 = 0,
                wave: UInt32 = 0, message: String = "") {
        self.clusterID = clusterID
        self.phase = phase
        self.leaderID = leaderID
        self.leaderEpoch = leaderEpoch
        self.counts = counts
        self.bytesFromCoordinator = bytesFromCoordinator
        self.bytesServed = bytesServed
        self.wave = wave
        self.message = message
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: clusterID = try field.string()
            case 2: phase = try field.wireEnum()
            case 3: leaderID = try field.string()
            case 4: leaderEpoch = try field.uint64()
            case 5: counts = try field.message()
            case 6: bytesFromCoordinator = try field.uint64()
            case 7: bytesServed = try field.uint64()
            case 8: wave = try field.uint32()
            case 9: message = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, clusterID)
        writer.put(2, phase)
        writer.put(3, leaderID)
        writer.put(4, leaderEpoch)
        writer.putUnlessEmpty(5, counts)
        writer.put(6, bytesFromCoordinator)
        writer.put(7, bytesServed)
        writer.put(8, wave)
        writer.put(9, message)
    }
}

/// One agent's row in a rollout's status.
public struct AgentRow: WireMessage, Hashable, Sendable {
    public var agentID: String
    public var clusterID: String
    public var role: AgentRole
    public var progress: AgentProgress
    public var updatedAtMs: UInt64

    public init(agentID: String = "", clusterID: String = "", role: AgentRole = .unspecified,
                progress: AgentProgress = AgentProgress(), updatedAtMs: UInt64 = 0) {
        self.agentID = agentID
        self.clusterID = clusterID
        self.role = role
        self.progress = progress
        self.updatedAtMs = updatedAtMs
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: agentID = try field.string()
            case 2: clusterID = try field.string()
            case 3: role = try field.wireEnum()
            case 4: progress = try field.message()
            case 5: updatedAtMs = try field.uint64()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, agentID)
        writer.put(2, clusterID)
        writer.put(3, role)
        writer.putUnlessEmpty(4, progress)
        writer.put(5, updatedAtMs)
    }
}

/// A rollout's status: the answer of every rollout method and each `WatchRollout` snapshot.
/// Times are unix milliseconds; 0 means "not yet".
public struct RolloutStatus: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    public var releaseVersion: String
    public var state: RolloutState
    public var policy: RolloutPolicy
    /// The cluster ids requested; empty means every cluster.
    public var clusters: [String]
    public var createdAtMs: UInt64
    public var startedAtMs: UInt64
    public var finishedAtMs: UInt64
    public var updatedAtMs: UInt64
    /// Operator id that started it.
    public var createdBy: String
    /// Why it failed, was aborted or paused; empty otherwise.
    public var message: String
    /// Agents per state over all clusters in scope.
    public var totals: StateCounts
    public var clusterProgress: [ClusterProgress]
    /// Only when asked for (`RolloutQuery.includeAgents`).
    public var agents: [AgentRow]
    /// The release version the agents ran before (the lowest seen), for people.
    public var fromVersion: String

    public init(rolloutID: UInt64 = 0, releaseVersion: String = "", state: RolloutState = .unspecified,
                policy: RolloutPolicy = RolloutPolicy(), clusters: [String] = [], createdAtMs: UInt64 = 0,
                startedAtMs: UInt64 = 0, finishedAtMs: UInt64 = 0, updatedAtMs: UInt64 = 0, createdBy: String = "",
                message: String = "", totals: StateCounts = StateCounts(), clusterProgress: [ClusterProgress] = [],
                agents: [AgentRow] = [], fromVersion: String = "") {
        self.rolloutID = rolloutID
        self.releaseVersion = releaseVersion
        self.state = state
        self.policy = policy
        self.clusters = clusters
        self.createdAtMs = createdAtMs
        self.startedAtMs = startedAtMs
        self.finishedAtMs = finishedAtMs
        self.updatedAtMs = updatedAtMs
        self.createdBy = createdBy
        self.message = message
        self.totals = totals
        self.clusterProgress = clusterProgress
        self.agents = agents
        self.fromVersion = fromVersion
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: releaseVersion = try field.string()
            case 3: state = try field.wireEnum()
            case 4: policy = try field.message()
            case 5: try appendBounded(field.string(), to: &clusters, field: field)
            case 6: createdAtMs = try field.uint64()
            case 7: startedAtMs = try field.uint64()
            case 8: finishedAtMs = try field.uint64()
            case 9: updatedAtMs = try field.uint64()
            case 10: createdBy = try field.string()
            case 11: message = try field.string()
            case 12: totals = try field.message()
            case 13: try appendBounded(field.message(), to: &clusterProgress, field: field)
            case 14: try appendBounded(field.message(), to: &agents, field: field)
            case 15: fromVersion = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, releaseVersion)
        writer.put(3, state)
        writer.putUnlessEmpty(4, policy)
        writer.put(5, clusters)
        writer.put(6, createdAtMs)
        writer.put(7, startedAtMs)
        writer.put(8, finishedAtMs)
        writer.put(9, updatedAtMs)
        writer.put(10, createdBy)
        writer.put(11, message)
        writer.putUnlessEmpty(12, totals)
        writer.put(13, clusterProgress)
        writer.put(14, agents)
        writer.put(15, fromVersion)
    }
}

/// `cascade.Operator/ListRollouts` request: newest first.
public struct ListRolloutsRequest: WireMessage, Hashable, Sendable {
    /// At most this many; 0 means 20, and the coordinator caps it at 1000.
    public var limit: UInt32
    /// Only rollouts with a smaller id (paging); 0 means from the newest.
    public var beforeID: UInt64

    public init(limit: UInt32 = 0, beforeID: UInt64 = 0) {
        self.limit = limit
        self.beforeID = beforeID
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: limit = try field.uint32()
            case 2: beforeID = try field.uint64()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, limit)
        writer.put(2, beforeID)
    }
}

/// `cascade.Operator/ListRollouts` response: statuses without per-agent rows.
public struct ListRolloutsResponse: WireMessage, Hashable, Sendable {
    public var rollouts: [RolloutStatus]

    public init(rollouts: [RolloutStatus] = []) {
        self.rollouts = rollouts
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            if field.number == 1 { try appendBounded(field.message(), to: &rollouts, field: field) }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rollouts)
    }
}
