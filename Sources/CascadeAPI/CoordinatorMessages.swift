public import CascadeCrypto
public import CascadeWire

/// One agent's progress in one rollout, as the agent (or its leader) reports it (services.md §3.2).
public struct AgentProgress: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    public var state: AgentRolloutState
    /// The release the rollout moves the agent to.
    public var releaseVersion: String
    /// While downloading: bytes verified so far, and the artifact size.
    public var bytesDone: UInt64
    public var bytesTotal: UInt64
    /// Why the agent failed or rolled back; empty otherwise.
    public var error: String

    public init(rolloutID: UInt64 = 0, state: AgentRolloutState = .unspecified, releaseVersion: String = "",
                bytesDone: UInt64 = 0, bytesTotal: UInt64 = 0, error: String = "") {
        self.rolloutID = rolloutID
        self.state = state
        self.releaseVersion = releaseVersion
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.error = error
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: state = try field.wireEnum()
            case 3: releaseVersion = try field.string()
            case 4: bytesDone = try field.uint64()
            case 5: bytesTotal = try field.uint64()
            case 6: error = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, state)
        writer.put(3, releaseVersion)
        writer.put(4, bytesDone)
        writer.put(5, bytesTotal)
        writer.put(6, error)
    }
}

/// `cascade.Coordinator/Register` request. The agent's id is never a field: it is the id in
/// the agent's certificate (rpc.md §8).
public struct RegisterRequest: WireMessage, Hashable, Sendable {
    /// The IP address the agent listens on and is grouped by, e.g. "127.0.1.5" or "fd00::5".
    public var address: String
    /// The port it serves `cascade.Leader` on when it is a leader.
    public var memberPort: UInt32
    public var mainVersion: String
    public var upgraderVersion: String
    public var idle: IdleRatios
    /// Where the agent stands in a rollout it was part of, so a restarted coordinator (or a
    /// new leader) resumes it. Absent when the agent is in no rollout.
    public var resume: AgentProgress?
    /// For people: the host name. Never used to identify the agent.
    public var hostname: String

    public init(address: String = "", memberPort: UInt32 = 0, mainVersion: String = "", upgraderVersion: String = "",
                idle: IdleRatios = IdleRatios(), resume: AgentProgress? = nil, hostname: String = "") {
        self.address = address
        self.memberPort = memberPort
        self.mainVersion = mainVersion
        self.upgraderVersion = upgraderVersion
        self.idle = idle
        self.resume = resume
        self.hostname = hostname
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: address = try field.string()
            case 2: memberPort = try field.uint32()
            case 3: mainVersion = try field.string()
            case 4: upgraderVersion = try field.string()
            case 5: idle = try field.message()
            case 6: resume = try field.message()
            case 7: hostname = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, address)
        writer.put(2, memberPort)
        writer.put(3, mainVersion)
        writer.put(4, upgraderVersion)
        writer.putUnlessEmpty(5, idle)
        writer.put(6, resume)
        writer.put(7, hostname)
    }
}

/// `cascade.Coordinator/Register` response, and the `assignment` of an `Instruction`: the
/// agent's role, cluster and leader.
public struct Assignment: WireMessage, Hashable, Sendable {
    /// The id the coordinator knows the agent by (from its certificate), for logs.
    public var agentID: String
    public var role: AgentRole
    public var clusterID: String
    /// The cluster's subnet, e.g. "127.0.1.0/24" or "fd00:1::/64".
    public var clusterPrefix: String
    public var leaderID: String
    /// Where the leader serves `cascade.Leader`: "ip:port", "[ipv6]:port" for IPv6.
    public var leaderAddress: String
    public var leaderEpoch: UInt64
    /// How often the agent sends a heartbeat report, in milliseconds; 0 means 5000.
    public var reportIntervalMs: UInt32
    /// For a leader: the agent ids of its members, the only ones it serves.
    public var memberIDs: [String]

    public init(agentID: String = "", role: AgentRole = .unspecified, clusterID: String = "", clusterPrefix: String = "",
                leaderID: String = "", leaderAddress: String = "", leaderEpoch: UInt64 = 0, reportIntervalMs: UInt32 = 0,
                memberIDs: [String] = []) {
        self.agentID = agentID
        self.role = role
        self.clusterID = clusterID
        self.clusterPrefix = clusterPrefix
        self.leaderID = leaderID
        self.leaderAddress = leaderAddress
        self.leaderEpoch = leaderEpoch
        self.reportIntervalMs = reportIntervalMs
        self.memberIDs = memberIDs
    }

    public static let defaultReportIntervalMs: UInt32 = 5000

    public var effectiveReportIntervalMs: UInt32 {
        reportIntervalMs == 0 ? Self.defaultReportIntervalMs : reportIntervalMs
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: agentID = try field.string()
            case 2: role = try field.wireEnum()
            case 3: clusterID = try field.string()
            case 4: clusterPrefix = try field.string()
            case 5: leaderID = try field.string()
            case 6: leaderAddress = try field.string()
            case 7: leaderEpoch = try field.uint64()
            case 8: reportIntervalMs = try field.uint32()
            case 9: try appendBounded(field.string(), to: &memberIDs, field: field)
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, agentID)
        writer.put(2, role)
        writer.put(3, clusterID)
        writer.put(4, clusterPrefix)
        writer.put(5, leaderID)
        writer.put(6, leaderAddress)
        writer.put(7, leaderEpoch)
        writer.put(8, reportIntervalMs)
        writer.put(9, memberIDs)
    }
}

/// `cascade.Coordinator/GetRelease` request; the response is the release's `SignedManifest`.
public struct GetReleaseRequest: WireMessage, Hashable, Sendable {
    public var version: String

    public init(version: String = "") {
        self.version = version
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            if field.number == 1 { version = try field.string() }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, version)
    }
}

/// `FetchChunks` request (coordinator and leader alike): chunks `firstIndex` onward, in order.
public struct FetchChunksRequest: WireMessage, Hashable, Sendable {
    public var version: String
    /// The artifact's SHA-256 (`Manifest.sha256`); when set with `version`, both must match.
    public var artifactSHA256: SHA256Digest?
    public var firstIndex: UInt32
    /// At most this many chunks; 0 means through the last chunk.
    public var maxChunks: UInt32

    public init(version: String = "", artifactSHA256: SHA256Digest? = nil, firstIndex: UInt32 = 0, maxChunks: UInt32 = 0) {
        self.version = version
        self.artifactSHA256 = artifactSHA256
        self.firstIndex = firstIndex
        self.maxChunks = maxChunks
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: version = try field.string()
            case 2: artifactSHA256 = try field.digest()
            case 3: firstIndex = try field.uint32()
            case 4: maxChunks = try field.uint32()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, version)
        writer.put(2, artifactSHA256)
        writer.put(3, firstIndex)
        writer.put(4, maxChunks)
    }
}

/// One chunk of an artifact. `sha256` repeats the manifest's hash for a quick check; the
/// receiver still checks against the signed manifest, never against this field alone.
public struct Chunk: WireMessage, Hashable, Sendable {
    public var index: UInt32
    public var data: [UInt8]
    public var sha256: SHA256Digest?

    public init(index: UInt32 = 0, data: [UInt8] = [], sha256: SHA256Digest? = nil) {
        self.index = index
        self.data = data
        self.sha256 = sha256
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: index = try field.uint32()
            case 2: data = try field.bytes()
            case 3: sha256 = try field.digest()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, index)
        writer.put(2, data)
        writer.put(3, sha256)
    }
}

/// A hint where to fetch a release from; also the answer to `ReportFault`.
public struct FetchHint: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    public var source: FetchSource
    /// "ip:port" of the source; empty for the coordinator (the address the agent already uses).
    public var address: String
    public var reason: String

    public init(rolloutID: UInt64 = 0, source: FetchSource = .unspecified, address: String = "", reason: String = "") {
        self.rolloutID = rolloutID
        self.source = source
        self.address = address
        self.reason = reason
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: source = try field.wireEnum()
            case 3: address = try field.string()
            case 4: reason = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, source)
        writer.put(3, address)
        writer.put(4, reason)
    }
}

/// `cascade.Coordinator/ReportFault` request: a source (normally the leader) served a chunk
/// that failed its check against the signed manifest.
public struct FaultReport: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    /// Agent id of the source that served the bad chunk; empty for the coordinator.
    public var sourceID: String
    public var releaseVersion: String
    public var chunkIndex: UInt32
    public var leaderEpoch: UInt64
    public var detail: String
    /// Not a bad chunk: the source (a leader) sent an order that did not match what the
    /// coordinator said the rollout installs, and the reporter refused it.
    public var orderRefused: Bool

    public init(rolloutID: UInt64 = 0, sourceID: String = "", releaseVersion: String = "", chunkIndex: UInt32 = 0,
                leaderEpoch: UInt64 = 0, detail: String = "", orderRefused: Bool = false) {
        self.rolloutID = rolloutID
        self.sourceID = sourceID
        self.releaseVersion = releaseVersion
        self.chunkIndex = chunkIndex
        self.leaderEpoch = leaderEpoch
        self.detail = detail
        self.orderRefused = orderRefused
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: sourceID = try field.string()
            case 3: releaseVersion = try field.string()
            case 4: chunkIndex = try field.uint32()
            case 5: leaderEpoch = try field.uint64()
            case 6: detail = try field.string()
            case 7: orderRefused = try field.bool()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, sourceID)
        writer.put(3, releaseVersion)
        writer.put(4, chunkIndex)
        writer.put(5, leaderEpoch)
        writer.put(6, detail)
        writer.put(7, orderRefused)
    }
}
