public import CascadeAPI

/// A snapshot of what the runtime knows and has done, for the agent's status output and tests.
public struct AgentRuntimeStatus: Sendable, Hashable {
    /// From the coordinator's `Assignment` (the id in this agent's certificate); empty before.
    public var agentID: String
    public var role: AgentRole
    public var clusterID: String
    public var leaderID: String
    public var leaderAddress: String
    public var epoch: UInt64
    public var mainVersion: String
    /// This agent's own progress in its latest rollout.
    public var progress: AgentProgress?
    /// The port `cascade.Leader` is served on.
    public var memberPort: UInt16
    /// Artifact bytes stored after verification, by source.
    public var bytesFromLeader: UInt64
    public var bytesFromCoordinator: UInt64
    /// As a leader: artifact bytes sent to members.
    public var bytesServed: UInt64
    public var registrations: Int
    public var reportsSent: Int
    /// Instructions, assignments and releases refused (stale epoch, unpinned key, ...).
    public var refusals: Int
    public var faultsReported: Int
    /// Installer calls made.
    public var installs: Int
    public var secondInstructionsSent: Int
    /// Leader orders refused because they were not what the coordinator named (each reported).
    public var ordersRefused: Int
    /// The lowest version this agent installs without a downgrade authorisation.
    public var installFloor: String
    /// Set while this agent leads a rollout.
    public var leader: LeaderStatus?
}

/// What a leader knows of the rollout it runs in its cluster.
public struct LeaderStatus: Sendable, Hashable {
    public var rolloutID: UInt64
    public var memberStates: [String: AgentRolloutState]
    public var connectedMembers: Set<String>
    /// Chunks of the release verified and staged by this leader.
    public var stagedChunks: Int
    public var chunkCount: Int
    /// Most members in flight (instructed, downloading, installing) at once.
    public var peakInFlight: Int
    public var paused: Bool
    public var aborted: Bool
    /// The member that sent the second instruction, once it has.
    public var secondInstructionFrom: String?
}

struct Counters: Sendable {
    var bytesFromLeader: UInt64 = 0
    var bytesFromCoordinator: UInt64 = 0
    var bytesServed: UInt64 = 0
    var registrations = 0
    var reportsSent = 0
    var refusals = 0
    var faultsReported = 0
    var installs = 0
    var secondInstructionsSent = 0
    var ordersRefused = 0
}

extension AgentRuntime {
    /// The agent's own progress changed outside the runtime (an install it handed over was
    /// confirmed healthy after the restart): record it and report it.
    public func reportProgress(_ progress: AgentProgress) {
        setProgress(progress)
    }
}
