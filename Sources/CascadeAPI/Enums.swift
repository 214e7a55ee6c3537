/// An agent's role in its cluster, given by the coordinator (services.md §3.1).
public enum AgentRole: WireEnum {
    case unspecified
    case member
    case leader
    case unknown(UInt32)

    public init(wireValue: UInt32) {
        switch wireValue {
        case 0: self = .unspecified
        case 1: self = .member
        case 2: self = .leader
        default: self = .unknown(wireValue)
        }
    }

    public var wireValue: UInt32 {
        switch self {
        case .unspecified: 0
        case .member: 1
        case .leader: 2
        case .unknown(let value): value
        }
    }

    public var description: String {
        switch self {
        case .unspecified: "unspecified"
        case .member: "member"
        case .leader: "leader"
        case .unknown(let value): "unknown(\(value))"
        }
    }
}

/// One agent's progress in one rollout (services.md §3.2): pending → instructed →
/// downloading → installing → healthy | failed | rolled-back.
public enum AgentRolloutState: WireEnum, CaseIterable {
    case unspecified
    case pending
    case instructed
    case downloading
    case installing
    case healthy
    case failed
    case rolledBack
    case unknown(UInt32)

    /// The defined states, in order (for counts and tables).
    public static let allCases: [AgentRolloutState] =
        [.pending, .instructed, .downloading, .installing, .healthy, .failed, .rolledBack]

    public init(wireValue: UInt32) {
        switch wireValue {
        case 0: self = .unspecified
        case 1: self = .pending
        case 2: self = .instructed
        case 3: self = .downloading
        case 4: self = .installing
        case 5: self = .healthy
        case 6: self = .failed
        case 7: self = .rolledBack
        default: self = .unknown(wireValue)
        }
    }

    public var wireValue: UInt32 {
        switch self {
        case .unspecified: 0
        case .pending: 1
        case .instructed: 2
        case .downloading: 3
        case .installing: 4
        case .healthy: 5
        case .failed: 6
        case .rolledBack: 7
        case .unknown(let value): value
        }
    }

    public var description: String {
        switch self {
        case .unspecified: "unspecified"
        case .pending: "pending"
        case .instructed: "instructed"
        case .downloading: "downloading"
        case .installing: "installing"
        case .healthy: "healthy"
        case .failed: "failed"
        case .rolledBack: "rolled-back"
        case .unknown(let value): "unknown(\(value))"
        }
    }

    /// The agent is done with the rollout, one way or the other.
    public var isTerminal: Bool {
        switch self {
        case .healthy, .failed, .rolledBack: true
        default: false
        }
    }
}

/// A rollout's state (services.md §3.4): requested → running ⇄ paused → succeeded | partial | failed | aborted.
/// `partial` (7) came with services.md 1.2: every cluster finished, but some agents failed or
/// rolled back within the failure budget. Older clients decode it as `unknown(7)`.
public enum RolloutState: WireEnum, CaseIterable {
    case unspecified
    case requested
    case running
    case paused
    case succeeded
    case failed
    case aborted
    case partial
    case unknown(UInt32)

    public static let allCases: [RolloutState] = [.requested, .running, .paused, .succeeded, .failed, .aborted, .partial]

    public init(wireValue: UInt32) {
        switch wireValue {
        case 0: self = .unspecified
        case 1: self = .requested
        case 2: self = .running
        case 3: self = .paused
        case 4: self = .succeeded
        case 5: self = .failed
        case 6: self = .aborted
        case 7: self = .partial
        default: self = .unknown(wireValue)
        }
    }

    public var wireValue: UInt32 {
        switch self {
        case .unspecified: 0
        case .requested: 1
        case .running: 2
        case .paused: 3
        case .succeeded: 4
        case .failed: 5
        case .aborted: 6
        case .partial: 7
        case .unknown(let value): value
        }
    }

    public var description: String {
        switch self {
        case .unspecified: "unspecified"
        case .requested: "requested"
        case .running: "running"
        case .paused: "paused"
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .aborted: "aborted"
        case .partial: "partial"
        case .unknown(let value): "unknown(\(value))"
        }
    }

    public var isTerminal: Bool {
        switch self {
        case .succeeded, .partial, .failed, .aborted: true
        default: false
        }
    }
}

/// Where one cluster is in a rollout (services.md §3.4).
public enum ClusterPhase: WireEnum, CaseIterable {
    case unspecified
    /// Not started yet (waiting for its wave).
    case pending
    /// The leader is instructing and serving its members.
    case members
    /// The members are done; the leader is upgrading itself.
    case leader
    case succeeded
    case failed
    case aborted
    case unknown(UInt32)

    public static let allCases: [ClusterPhase] = [.pending, .members, .leader, .succeeded, .failed, .aborted]

    public init(wireValue: UInt32) {
        switch wireValue {
        case 0: self = .unspecified
        case 1: self = .pending
        case 2: self = .members
        case 3: self = .leader
        case 4: self = .succeeded
        case 5: self = .failed
        case 6: self = .aborted
        default: self = .unknown(wireValue)
        }
    }

    public var wireValue: UInt32 {
        switch self {
        case .unspecified: 0
        case .pending: 1
        case .members: 2
        case .leader: 3
        case .succeeded: 4
        case .failed: 5
        case .aborted: 6
        case .unknown(let value): value
        }
    }

    public var description: String {
        switch self {
        case .unspecified: "unspecified"
        case .pending: "pending"
        case .members: "members"
        case .leader: "leader"
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .aborted: "aborted"
        case .unknown(let value): "unknown(\(value))"
        }
    }
}

/// A control order for a running rollout (services.md §3.3).
public enum RolloutAction: WireEnum, CaseIterable {
    case unspecified
    case pause
    case resume
    case abort
    case unknown(UInt32)

    public static let allCases: [RolloutAction] = [.pause, .resume, .abort]

    public init(wireValue: UInt32) {
        switch wireValue {
        case 0: self = .unspecified
        case 1: self = .pause
        case 2: self = .resume
        case 3: self = .abort
        default: self = .unknown(wireValue)
        }
    }

    public var wireValue: UInt32 {
        switch self {
        case .unspecified: 0
        case .pause: 1
        case .resume: 2
        case .abort: 3
        case .unknown(let value): value
        }
    }

    public var description: String {
        switch self {
        case .unspecified: "unspecified"
        case .pause: "pause"
        case .resume: "resume"
        case .abort: "abort"
        case .unknown(let value): "unknown(\(value))"
        }
    }
}

/// Where an agent should fetch a release's chunks from (services.md §3.3).
public enum FetchSource: WireEnum, CaseIterable {
    /// No preference: the member fetches from its leader, as before this field existed.
    case unspecified
    case leader
    case coordinator
    case unknown(UInt32)

    public static let allCases: [FetchSource] = [.leader, .coordinator]

    public init(wireValue: UInt32) {
        switch wireValue {
        case 0: self = .unspecified
        case 1: self = .leader
        case 2: self = .coordinator
        default: self = .unknown(wireValue)
        }
    }

    public var wireValue: UInt32 {
        switch self {
        case .unspecified: 0
        case .leader: 1
        case .coordinator: 2
        case .unknown(let value): value
        }
    }

    public var description: String {
        switch self {
        case .unspecified: "unspecified"
        case .leader: "leader"
        case .coordinator: "coordinator"
        case .unknown(let value): "unknown(\(value))"
        }
    }
}
