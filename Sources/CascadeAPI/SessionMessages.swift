public import CascadeWire

/// An agent's liveness sample: idle ratios (for the idle weight) and its two versions.
public struct Heartbeat: WireMessage, Hashable, Sendable {
    public var idle: IdleRatios
    public var mainVersion: String
    public var upgraderVersion: String

    public init(idle: IdleRatios = IdleRatios(), mainVersion: String = "", upgraderVersion: String = "") {
        self.idle = idle
        self.mainVersion = mainVersion
        self.upgraderVersion = upgraderVersion
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: idle = try field.message()
            case 2: mainVersion = try field.string()
            case 3: upgraderVersion = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.putUnlessEmpty(1, idle)
        writer.put(2, mainVersion)
        writer.put(3, upgraderVersion)
    }
}

/// What a leader knows of one member, in a `ClusterReport`.
public struct MemberStatus: WireMessage, Hashable, Sendable {
    public var agentID: String
    /// The member holds a `Join` session with the leader right now.
    public var connected: Bool
    /// The member's latest heartbeat (absent if none since the last report).
    public var heartbeat: Heartbeat?
    /// The member's progress in the current rollout (absent if none).
    public var progress: AgentProgress?

    public init(agentID: String = "", connected: Bool = false, heartbeat: Heartbeat? = nil, progress: AgentProgress? = nil) {
        self.agentID = agentID
        self.connected = connected
        self.heartbeat = heartbeat
        self.progress = progress
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: agentID = try field.string()
            case 2: connected = try field.bool()
            case 3: heartbeat = try field.message()
            case 4: progress = try field.message()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, agentID)
        writer.put(2, connected)
        writer.put(3, heartbeat)
        writer.put(4, progress)
    }
}

/// A leader's batch report for its cluster, sent on its coordinator `Session`.
public struct ClusterReport: WireMessage, Hashable, Sendable {
    public var clusterID: String
    public var rolloutID: UInt64
    public var members: [MemberStatus]
    /// True when `members` lists every member (a snapshot); false when it lists only changes.
    public var complete: Bool
    /// Artifact bytes the leader received from the coordinator in this rollout, cumulative.
    public var bytesReceived: UInt64
    /// Artifact bytes the leader served to its members in this rollout, cumulative.
    public var bytesServed: UInt64

    public init(clusterID: String = "", rolloutID: UInt64 = 0, members: [MemberStatus] = [], complete: Bool = false,
                bytesReceived: UInt64 = 0, bytesServed: UInt64 = 0) {
        self.clusterID = clusterID
        self.rolloutID = rolloutID
        self.members = members
        self.complete = complete
        self.bytesReceived = bytesReceived
        self.bytesServed = bytesServed
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: clusterID = try field.string()
            case 2: rolloutID = try field.uint64()
            case 3: try appendBounded(field.message(), to: &members, field: field)
            case 4: complete = try field.bool()
            case 5: bytesReceived = try field.uint64()
            case 6: bytesServed = try field.uint64()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, clusterID)
        writer.put(2, rolloutID)
        writer.put(3, members)
        writer.put(4, complete)
        writer.put(5, bytesReceived)
        writer.put(6, bytesServed)
    }
}

/// Agent → coordinator (`Session`) and member → leader (`Join`): any combination of a
/// heartbeat, the sender's own progress and, from a leader to the coordinator, a cluster batch.
public struct AgentReport: WireMessage, Hashable, Sendable {
    /// The leader epoch the sender acts under (its `Assignment`'s).
    public var leaderEpoch: UInt64
    public var heartbeat: Heartbeat?
    public var progress: AgentProgress?
    public var cluster: ClusterReport?

    public init(leaderEpoch: UInt64 = 0, heartbeat: Heartbeat? = nil, progress: AgentProgress? = nil, cluster: ClusterReport? = nil) {
        self.leaderEpoch = leaderEpoch
        self.heartbeat = heartbeat
        self.progress = progress
        self.cluster = cluster
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: leaderEpoch = try field.uint64()
            case 2: heartbeat = try field.message()
            case 3: progress = try field.message()
            case 4: cluster = try field.message()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, leaderEpoch)
        writer.put(2, heartbeat)
        writer.put(3, progress)
        writer.put(4, cluster)
    }
}

/// A rollout's limits (services.md §3.4). Zero values mean the documented defaults, so an
/// empty policy is a valid, conservative one.
public struct RolloutPolicy: WireMessage, Hashable, Sendable {
    /// Members of one cluster upgrading at once; 0 means 1.
    public var maxUnavailable: UInt32
    /// Clusters upgrading at once; 0 means 1.
    public var maxParallelClusters: UInt32
    /// Clusters in a first wave that must succeed before any other starts; 0 means no canary wave.
    public var canaryClusters: UInt32
    /// Percent (0...100) of a cluster's agents that may fail before the rollout fails; 0 tolerates none.
    public var failureBudgetPercent: UInt32
    /// Seconds a new release has to report healthy before it is rolled back; 0 means 120.
    public var healthTimeoutSeconds: UInt32
    /// The release may be lower than the agents' current version (an explicit rollback).
    public var rollback: Bool

    public static let defaultHealthTimeoutSeconds: UInt32 = 120

    public init(maxUnavailable: UInt32 = 0, maxParallelClusters: UInt32 = 0, canaryClusters: UInt32 = 0,
                failureBudgetPercent: UInt32 = 0, healthTimeoutSeconds: UInt32 = 0, rollback: Bool = false) {
        self.maxUnavailable = maxUnavailable
        self.maxParallelClusters = maxParallelClusters
        self.canaryClusters = canaryClusters
        self.failureBudgetPercent = failureBudgetPercent
        self.healthTimeoutSeconds = healthTimeoutSeconds
        self.rollback = rollback
    }

    /// The values in force, with the zero defaults applied.
    public var effectiveMaxUnavailable: UInt32 { max(1, maxUnavailable) }
    public var effectiveMaxParallelClusters: UInt32 { max(1, maxParallelClusters) }
    public var effectiveHealthTimeoutSeconds: UInt32 {
        healthTimeoutSeconds == 0 ? Self.defaultHealthTimeoutSeconds : healthTimeoutSeconds
    }

    /// How many of `agents` may fail before the budget is spent (rounded down).
    public func failureAllowance(agents: Int) -> Int {
        agents * Int(min(failureBudgetPercent, 100)) / 100
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: maxUnavailable = try field.uint32()
            case 2: maxParallelClusters = try field.uint32()
            case 3: canaryClusters = try field.uint32()
            case 4: failureBudgetPercent = try field.uint32()
            case 5: healthTimeoutSeconds = try field.uint32()
            case 6: rollback = try field.bool()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, maxUnavailable)
        writer.put(2, maxParallelClusters)
        writer.put(3, canaryClusters)
        writer.put(4, failureBudgetPercent)
        writer.put(5, healthTimeoutSeconds)
        writer.put(6, rollback)
    }
}

/// Coordinator → leader: run rollout `rolloutID` in your cluster.
public struct ClusterRolloutOrder: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    public var releaseVersion: String
    public var signedManifest: SignedManifest?
    public var policy: RolloutPolicy
    /// Progress the coordinator has already recorded for members (after a leader change or a
    /// coordinator restart), so the leader resumes: healthy members are not instructed again.
    public var members: [MemberStatus]
    /// The coordinator's idle weights as integer parts (services.md §2.3); both 0 (an older
    /// coordinator) means the default 3 and 2.
    public var cpuWeight: UInt32
    public var memWeight: UInt32
    /// The leader instructs no member (and cues no second instruction) once this many agents
    /// of its cluster have ended failed or rolled back: with them the rollout's failure budget
    /// is spent (services.md §3.4). 0: no limit given (an older coordinator).
    public var failureLimit: UInt32

    public init(rolloutID: UInt64 = 0, releaseVersion: String = "", signedManifest: SignedManifest? = nil,
                policy: RolloutPolicy = RolloutPolicy(), members: [MemberStatus] = [],
                weights: IdleWeights? = nil, failureLimit: UInt32 = 0) {
        self.rolloutID = rolloutID
        self.releaseVersion = releaseVersion
        self.signedManifest = signedManifest
        self.policy = policy
        self.members = members
        self.cpuWeight = weights?.cpu ?? 0
        self.memWeight = weights?.memory ?? 0
        self.failureLimit = failureLimit
    }

    /// The weights the leader ranks members with (the sixth server's choice).
    public var weights: IdleWeights {
        cpuWeight == 0 && memWeight == 0 ? .default : IdleWeights(cpu: cpuWeight, memory: memWeight)
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: releaseVersion = try field.string()
            case 3: signedManifest = try field.message()
            case 4: policy = try field.message()
            case 5: try appendBounded(field.message(), to: &members, field: field)
            case 6: cpuWeight = try field.uint32()
            case 7: memWeight = try field.uint32()
            case 8: failureLimit = try field.uint32()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, releaseVersion)
        writer.put(3, signedManifest)
        writer.putUnlessEmpty(4, policy)
        writer.put(5, members)
        writer.put(6, cpuWeight)
        writer.put(7, memWeight)
        writer.put(8, failureLimit)
    }
}

/// Leader → member: the first upgrade instruction.
public struct UpgradeOrder: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    public var releaseVersion: String
    public var signedManifest: SignedManifest?
    /// Seconds the new release has to come up healthy; 0 means 120.
    public var healthTimeoutSeconds: UInt32
    /// A lower version than the running one is allowed (explicit rollback).
    public var rollback: Bool
    /// Where to fetch chunks; absent means from the leader that sent the order.
    public var fetch: FetchHint?

    /// The health timeout to use: 0 means the default of services.md §3.4.
    public var effectiveHealthTimeoutSeconds: UInt32 {
        healthTimeoutSeconds == 0 ? RolloutPolicy.defaultHealthTimeoutSeconds : healthTimeoutSeconds
    }

    public init(rolloutID: UInt64 = 0, releaseVersion: String = "", signedManifest: SignedManifest? = nil,
                healthTimeoutSeconds: UInt32 = 0, rollback: Bool = false, fetch: FetchHint? = nil) {
        self.rolloutID = rolloutID
        self.releaseVersion = releaseVersion
        self.signedManifest = signedManifest
        self.healthTimeoutSeconds = healthTimeoutSeconds
        self.rollback = rollback
        self.fetch = fetch
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: releaseVersion = try field.string()
            case 3: signedManifest = try field.message()
            case 4: healthTimeoutSeconds = try field.uint32()
            case 5: rollback = try field.bool()
            case 6: fetch = try field.message()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, releaseVersion)
        writer.put(3, signedManifest)
        writer.put(4, healthTimeoutSeconds)
        writer.put(5, rollback)
        writer.put(6, fetch)
    }
}

/// Pause, resume or abort a rollout (coordinator → leader, leader → member).
public struct RolloutControl: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    public var action: RolloutAction
    public var reason: String

    public init(rolloutID: UInt64 = 0, action: RolloutAction = .unspecified, reason: String = "") {
        self.rolloutID = rolloutID
        self.action = action
        self.reason = reason
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: action = try field.wireEnum()
            case 3: reason = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, action)
        writer.put(3, reason)
    }
}

/// Leader → the upgraded member with the highest idle weight (the "sixth server"): every
/// member is done, send me the second instruction (`cascade.Leader/UpgradeLeader`).
public struct SecondInstructionCue: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    public var releaseVersion: String

    public init(rolloutID: UInt64 = 0, releaseVersion: String = "") {
        self.rolloutID = rolloutID
        self.releaseVersion = releaseVersion
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: releaseVersion = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, releaseVersion)
    }
}

/// Coordinator → agent (`Session`) and leader → member (`Join`). Carries the sender's leader
/// epoch and any of the orders below; a receiver refuses an instruction whose epoch is lower
/// than the one it holds (services.md §3.5).
public struct Instruction: WireMessage, Hashable, Sendable {
    public var leaderEpoch: UInt64
    /// New role, leader or epoch (coordinator only).
    public var assignment: Assignment?
    /// Start or resume a rollout in the leader's cluster (coordinator → leader).
    public var clusterRollout: ClusterRolloutOrder?
    /// The first upgrade instruction (leader → member).
    public var upgrade: UpgradeOrder?
    public var control: RolloutControl?
    public var fetchHint: FetchHint?
    /// You are the sixth server: send the leader the second instruction (leader → member).
    public var secondInstructionCue: SecondInstructionCue?
    /// What a rollout installs (coordinator only): the check for a leader's orders.
    public var expectation: RolloutExpectation?

    public init(leaderEpoch: UInt64 = 0, assignment: Assignment? = nil, clusterRollout: ClusterRolloutOrder? = nil,
                upgrade: UpgradeOrder? = nil, control: RolloutControl? = nil, fetchHint: FetchHint? = nil,
                secondInstructionCue: SecondInstructionCue? = nil, expectation: RolloutExpectation? = nil) {
        self.leaderEpoch = leaderEpoch
        self.assignment = assignment
        self.clusterRollout = clusterRollout
        self.upgrade = upgrade
        self.control = control
        self.fetchHint = fetchHint
        self.secondInstructionCue = secondInstructionCue
        self.expectation = expectation
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: leaderEpoch = try field.uint64()
            case 2: assignment = try field.message()
            case 3: clusterRollout = try field.message()
            case 4: upgrade = try field.message()
            case 5: control = try field.message()
            case 6: fetchHint = try field.message()
            case 7: secondInstructionCue = try field.message()
            case 8: expectation = try field.message()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, leaderEpoch)
        writer.put(2, assignment)
        writer.put(3, clusterRollout)
        writer.put(4, upgrade)
        writer.put(5, control)
        writer.put(6, fetchHint)
        writer.put(7, secondInstructionCue)
        writer.put(8, expectation)
    }
}
