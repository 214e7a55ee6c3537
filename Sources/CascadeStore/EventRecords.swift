/// The kind of an audit event: a dotted name.
public struct EventKind: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }

    public static let agentRegistered: EventKind = "agent.registered"
    public static let agentChanged: EventKind = "agent.changed"
    public static let agentOffline: EventKind = "agent.offline"
    public static let clusterCreated: EventKind = "cluster.created"
    public static let leaderChanged: EventKind = "cluster.leader-changed"
    public static let releaseCreated: EventKind = "release.created"
    public static let releaseCompleted: EventKind = "release.completed"
    public static let releaseDeleted: EventKind = "release.deleted"
    public static let releaseDamaged: EventKind = "release.damaged"
    public static let rolloutCreated: EventKind = "rollout.created"
    public static let rolloutState: EventKind = "rollout.state"
    public static let rolloutClusterState: EventKind = "rollout.cluster-state"
    public static let rolloutAgentState: EventKind = "rollout.agent-state"
    public static let rolloutRecordCorrected: EventKind = "rollout.record-corrected"
    public static let rolloutSecondInstructionCue: EventKind = "rollout.second-instruction-cue"
    public static let rolloutDowngradeAuthorized: EventKind = "rollout.downgrade-authorized"
    public static let rolloutBadChunk: EventKind = "rollout.bad-chunk"
    public static let rolloutFaultIgnored: EventKind = "rollout.fault-ignored"
    public static let securityOrderRefused: EventKind = "security.order-refused"
    public static let securityRegistrationRefused: EventKind = "security.registration-refused"
    public static let securityPermissionDenied: EventKind = "security.permission-denied"
}

/// The ids an event is about besides its subject (the cluster of a cluster's rollout state, the
/// rollout of a bad chunk), so a filter on any of them finds it (services.md §3.9).
public struct EventRefs: Sendable, Hashable {
    public var rolloutID: Int64?
    public var cluster: String?
    public var agentID: String?

    public init(rollout: Int64? = nil, cluster: String? = nil, agent: String? = nil) {
        self.rolloutID = rollout
        self.cluster = cluster
        self.agentID = agent
    }
}

/// What an event is about, as text: "agent:<id>", "cluster:<prefix>", "release:<version>",
/// "rollout:<id>" — so the log can be filtered by subject.
public enum EventSubject {
    public static func agent(_ id: String) -> String { "agent:\(id)" }
    public static func cluster(_ prefix: String) -> String { "cluster:\(prefix)" }
    public static func release(_ version: String) -> String { "release:\(version)" }
    public static func rollout(_ id: Int64) -> String { "rollout:\(id)" }
}

public struct EventRecord: Hashable, Sendable {
    public var id: Int64
    public var time: Timestamp
    public var actor: EventActor
    public var kind: EventKind
    public var subject: String
    public var detail: String
    /// The rollout, cluster (its prefix) and agent the event is about: from its subject and its
    /// refs; 0 and "" when none.
    public var rolloutID: Int64 = 0
    public var cluster: String = ""
    public var agentID: String = ""
}
