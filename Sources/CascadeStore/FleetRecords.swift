/// Who did something, from the peer's certificate (`cascade://<role>/<id>`) or the coordinator
/// itself. Recorded on every event.
public struct EventActor: Hashable, Sendable, CustomStringConvertible {
    public let role: String
    public let id: String

    public init(role: String, id: String) {
        self.role = role
        self.id = id
    }

    public static func agent(_ id: String) -> EventActor { EventActor(role: "agent", id: id) }
    public static func `operator`(_ id: String) -> EventActor { EventActor(role: "operator", id: id) }
    /// The coordinator's own decisions (elections, timeouts, engine steps).
    public static func coordinator(_ id: String = "coordinator") -> EventActor { EventActor(role: "coordinator", id: id) }

    /// As the audit log shows it (services.md §3.8): "operator alice", "agent a7", or just
    /// "coordinator" for the coordinator's own decisions, whatever part of it made them.
    public var description: String { role == "coordinator" ? role : "\(role) \(id)" }
}

public enum AgentRole: String, Hashable, Sendable, CaseIterable {
    case member, leader
}

/// Whether the coordinator has a session with the agent (directly or through its leader).
public enum AgentConnection: String, Hashable, Sendable, CaseIterable {
    case online, offline
}

/// What an agent says when it registers (identity from its certificate, the rest from the message).
public struct AgentRegistration: Hashable, Sendable {
    public var id: String
    public var address: String
    public var port: Int
    public var mainVersion: String
    public var upgraderVersion: String
    public var cpuIdle: Double
    public var memoryIdle: Double
    /// The name the agent gives its host, for people (cut to `maxHostnameBytes`).
    public var hostname: String

    /// Longer host names are cut: the field is only shown, and a peer must not fill the
    /// database with it.
    public static let maxHostnameBytes = 255

    public init(
        id: String, address: String, port: Int, mainVersion: String, upgraderVersion: String, cpuIdle: Double, memoryIdle: Double,
        hostname: String = ""
    ) {
        self.id = id
        self.address = address
        self.port = port
        self.mainVersion = mainVersion
        self.upgraderVersion = upgraderVersion
        self.cpuIdle = cpuIdle
        self.memoryIdle = memoryIdle
        self.hostname = hostname
    }
}

/// A periodic report: fresh idle ratios and, if they changed, versions.
public struct Heartbeat: Hashable, Sendable {
    public var agentID: String
    public var cpuIdle: Double
    public var memoryIdle: Double
    public var mainVersion: String?
    public var upgraderVersion: String?

    public init(agentID: String, cpuIdle: Double, memoryIdle: Double, mainVersion: String? = nil, upgraderVersion: String? = nil) {
        self.agentID = agentID
        self.cpuIdle = cpuIdle
        self.memoryIdle = memoryIdle
        self.mainVersion = mainVersion
        self.upgraderVersion = upgraderVersion
    }
}

public struct AgentRecord: Hashable, Sendable {
    public var id: String
    public var address: String
    public var port: Int
    public var clusterID: Int64
    public var clusterPrefix: String
    public var mainVersion: String
    public var upgraderVersion: String
    public var role: AgentRole
    public var cpuIdle: Double
    public var memoryIdle: Double
    public var lastSeen: Timestamp
    public var connection: AgentConnection
    public var registeredAt: Timestamp
    /// As registered (`AgentRegistration.hostname`); empty if the agent sent none.
    public var hostname: String
    /// Online and heard from within the liveness timeout, as of the read.
    public var isLive: Bool
    /// The idle weight under the store's configured weights, as of the read.
    public var weight: Double
}

public struct ClusterRecord: Hashable, Sendable {
    public var id: Int64
    public var prefix: String
    public var leaderID: String?
    /// Bumped on every leader change; members and leaders compare epochs to ignore a stale leader.
    public var leaderEpoch: Int64
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
}

/// A cluster's leader changed (in the same transaction as its event row).
public struct LeaderChange: Hashable, Sendable {
    public var clusterID: Int64
    public var prefix: String
    public var previousLeaderID: String?
    /// nil only when the previous leader left the cluster and no member is live.
    public var leaderID: String?
    public var epoch: Int64
    public var reason: String
}

/// One registration of a batch (`registerAgents`): the assignment, and a leader's members.
public struct RegisteredAgent: Hashable, Sendable {
    public var assignment: AgentAssignment
    /// The ids of the cluster's agents when the agent leads it; empty for a member.
    public var memberIDs: [String]

    public init(assignment: AgentAssignment, memberIDs: [String]) {
        self.assignment = assignment
        self.memberIDs = memberIDs
    }
}

/// What the coordinator tells an agent after register/heartbeat: its cluster, role and leader.
public struct AgentAssignment: Hashable, Sendable {
    public var agent: AgentRecord
    public var cluster: ClusterRecord
    /// The cluster's leader (the agent itself when it leads).
    public var leader: AgentRecord?
    /// Leader changes this call caused, in any cluster, for the coordinator to announce.
    public var leaderChanges: [LeaderChange]

    public var role: AgentRole { agent.role }
}

/// What a batch of heartbeats (a leader's cluster report) did.
public struct HeartbeatBatchResult: Hashable, Sendable {
    public var leaderChanges: [LeaderChange]
    /// Ids in the batch that are not registered; nothing was recorded for them.
    public var unknownAgentIDs: [String]
}
