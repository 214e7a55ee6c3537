public import CascadeWire

/// `cascade.Operator/ListAgents` request, in agent id order (byte-wise).
public struct ListAgentsRequest: WireMessage, Hashable, Sendable {
    /// Only this cluster; empty means all.
    public var clusterID: String
    /// At most this many; 0 means 1000, and the coordinator caps it at 10000.
    public var limit: UInt32
    /// Only agents whose id sorts after this one (paging); empty means from the first.
    public var afterAgentID: String

    public init(clusterID: String = "", limit: UInt32 = 0, afterAgentID: String = "") {
        self.clusterID = clusterID
        self.limit = limit
        self.afterAgentID = afterAgentID
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: clusterID = try field.string()
            case 2: limit = try field.uint32()
            case 3: afterAgentID = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, clusterID)
        writer.put(2, limit)
        writer.put(3, afterAgentID)
    }
}

/// One agent as the coordinator knows it. Times are unix milliseconds.
public struct AgentInfo: WireMessage, Hashable, Sendable {
    public var agentID: String
    public var address: String
    public var memberPort: UInt32
    public var clusterID: String
    public var role: AgentRole
    public var mainVersion: String
    public var upgraderVersion: String
    public var idle: IdleRatios
    public var lastSeenMs: UInt64
    /// The agent's session with the coordinator (leaders) or its leader (members, as reported) is up.
    public var connected: Bool
    public var hostname: String
    public var registeredAtMs: UInt64

    public init(agentID: String = "", address: String = "", memberPort: UInt32 = 0, clusterID: String = "",
                role: AgentRole = .unspecified, mainVersion: String = "", upgraderVersion: String = "",
                idle: IdleRatios = IdleRatios(), lastSeenMs: UInt64 = 0, connected: Bool = false, hostname: String = "",
                registeredAtMs: UInt64 = 0) {
        self.agentID = agentID
        self.address = address
        self.memberPort = memberPort
        self.clusterID = clusterID
        self.role = role
        self.mainVersion = mainVersion
        self.upgraderVersion = upgraderVersion
        self.idle = idle
        self.lastSeenMs = lastSeenMs
        self.connected = connected
        self.hostname = hostname
        self.registeredAtMs = registeredAtMs
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: agentID = try field.string()
            case 2: address = try field.string()
            case 3: memberPort = try field.uint32()
            case 4: clusterID = try field.string()
            case 5: role = try field.wireEnum()
            case 6: mainVersion = try field.string()
            case 7: upgraderVersion = try field.string()
            case 8: idle = try field.message()
            case 9: lastSeenMs = try field.uint64()
            case 10: connected = try field.bool()
            case 11: hostname = try field.string()
            case 12: registeredAtMs = try field.uint64()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, agentID)
        writer.put(2, address)
        writer.put(3, memberPort)
        writer.put(4, clusterID)
        writer.put(5, role)
        writer.put(6, mainVersion)
        writer.put(7, upgraderVersion)
        writer.putUnlessEmpty(8, idle)
        writer.put(9, lastSeenMs)
        writer.put(10, connected)
        writer.put(11, hostname)
        writer.put(12, registeredAtMs)
    }
}

/// `cascade.Operator/ListAgents` response.
public struct ListAgentsResponse: WireMessage, Hashable, Sendable {
    public var agents: [AgentInfo]
    /// More agents follow: ask again with `afterAgentID` = the last id here.
    public var more: Bool

    public init(agents: [AgentInfo] = [], more: Bool = false) {
        self.agents = agents
        self.more = more
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: try appendBounded(field.message(), to: &agents, field: field)
            case 2: more = try field.bool()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, agents)
        writer.put(2, more)
    }
}

/// One cluster: its subnet, leader and size. `MoveLeader` answers with the updated one.
public struct ClusterInfo: WireMessage, Hashable, Sendable {
    public var clusterID: String
    public var prefix: String
    public var leaderID: String
    public var leaderAddress: String
    public var leaderEpoch: UInt64
    public var agentCount: UInt32
    public var connectedCount: UInt32
    /// Unix milliseconds of the last leader change.
    public var leaderSinceMs: UInt64

    public init(clusterID: String = "", prefix: String = "", leaderID: String = "", leaderAddress: String = "",
                leaderEpoch: UInt64 = 0, agentCount: UInt32 = 0, connectedCount: UInt32 = 0, leaderSinceMs: UInt64 = 0) {
        self.clusterID = clusterID
        self.prefix = prefix
        self.leaderID = leaderID
        self.leaderAddress = leaderAddress
        self.leaderEpoch = leaderEpoch
        self.agentCount = agentCount
        self.connectedCount = connectedCount
        self.leaderSinceMs = leaderSinceMs
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: clusterID = try field.string()
            case 2: prefix = try field.string()
            case 3: leaderID = try field.string()
            case 4: leaderAddress = try field.string()
            case 5: leaderEpoch = try field.uint64()
            case 6: agentCount = try field.uint32()
            case 7: connectedCount = try field.uint32()
            case 8: leaderSinceMs = try field.uint64()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, clusterID)
        writer.put(2, prefix)
        writer.put(3, leaderID)
        writer.put(4, leaderAddress)
        writer.put(5, leaderEpoch)
        writer.put(6, agentCount)
        writer.put(7, connectedCount)
        writer.put(8, leaderSinceMs)
    }
}

/// `cascade.Operator/ListClusters` request.
public struct ListClustersRequest: WireMessage, Hashable, Sendable {
    public init() {}

    public init(from reader: inout MessageReader) throws(WireError) {
        while try reader.next() != nil {}
    }

    public func encode(to writer: inout MessageWriter) {}
}

/// `cascade.Operator/ListClusters` response, in cluster id order.
public struct ListClustersResponse: WireMessage, Hashable, Sendable {
    public var clusters: [ClusterInfo]

    public init(clusters: [ClusterInfo] = []) {
        self.clusters = clusters
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            if field.number == 1 { try appendBounded(field.message(), to: &clusters, field: field) }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, clusters)
    }
}

/// `cascade.Operator/MoveLeader` request.
public struct MoveLeaderRequest: WireMessage, Hashable, Sendable {
    public var clusterID: String
    public var agentID: String

    public init(clusterID: String = "", agentID: String = "") {
        self.clusterID = clusterID
        self.agentID = agentID
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: clusterID = try field.string()
            case 2: agentID = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, clusterID)
        writer.put(2, agentID)
    }
}

/// `cascade.Operator/ListEvents` request. Filters combine with AND; empty/0 filters are off.
public struct ListEventsRequest: WireMessage, Hashable, Sendable {
    /// At most this many; 0 means 100, and the coordinator caps it at 1000.
    public var limit: UInt32
    /// Only events with a larger id, oldest first (to follow the log). 0: the latest `limit`.
    public var afterID: UInt64
    /// Only events at or after this unix millisecond.
    public var sinceMs: UInt64
    public var rolloutID: UInt64
    public var clusterID: String
    public var agentID: String

    public init(limit: UInt32 = 0, afterID: UInt64 = 0, sinceMs: UInt64 = 0, rolloutID: UInt64 = 0,
                clusterID: String = "", agentID: String = "") {
        self.limit = limit
        self.afterID = afterID
        self.sinceMs = sinceMs
        self.rolloutID = rolloutID
        self.clusterID = clusterID
        self.agentID = agentID
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: limit = try field.uint32()
            case 2: afterID = try field.uint64()
            case 3: sinceMs = try field.uint64()
            case 4: rolloutID = try field.uint64()
            case 5: clusterID = try field.string()
            case 6: agentID = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, limit)
        writer.put(2, afterID)
        writer.put(3, sinceMs)
        writer.put(4, rolloutID)
        writer.put(5, clusterID)
        writer.put(6, agentID)
    }
}

/// One audit-log entry.
public struct Event: WireMessage, Hashable, Sendable {
    /// Increasing; the order events happened in.
    public var id: UInt64
    public var atMs: UInt64
    /// Who did it: a peer identity such as "operator alice" or "agent a7", or "coordinator".
    public var actor: String
    /// One of the kinds services.md §3.9 lists, e.g. "rollout.state", "cluster.leader-changed".
    public var kind: String
    public var rolloutID: UInt64
    public var clusterID: String
    public var agentID: String
    /// One sentence for people.
    public var detail: String

    public init(id: UInt64 = 0, atMs: UInt64 = 0, actor: String = "", kind: String = "", rolloutID: UInt64 = 0,
                clusterID: String = "", agentID: String = "", detail: String = "") {
        self.id = id
        self.atMs = atMs
        self.actor = actor
        self.kind = kind
        self.rolloutID = rolloutID
        self.clusterID = clusterID
        self.agentID = agentID
        self.detail = detail
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: id = try field.uint64()
            case 2: atMs = try field.uint64()
            case 3: actor = try field.string()
            case 4: kind = try field.string()
            case 5: rolloutID = try field.uint64()
            case 6: clusterID = try field.string()
            case 7: agentID = try field.string()
            case 8: detail = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, id)
        writer.put(2, atMs)
        writer.put(3, actor)
        writer.put(4, kind)
        writer.put(5, rolloutID)
        writer.put(6, clusterID)
        writer.put(7, agentID)
        writer.put(8, detail)
    }
}

/// `cascade.Operator/ListEvents` response, in id order.
public struct ListEventsResponse: WireMessage, Hashable, Sendable {
    public var events: [Event]

    public init(events: [Event] = []) {
        self.events = events
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            if field.number == 1 { try appendBounded(field.message(), to: &events, field: field) }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, events)
    }
}
