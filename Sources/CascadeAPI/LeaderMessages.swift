public import CascadeWire

/// `cascade.Leader/UpgradeLeader` request: the second instruction, sent to the leader by the
/// upgraded member with the highest idle weight once every member is done.
public struct UpgradeLeaderRequest: WireMessage, Hashable, Sendable {
    public var rolloutID: UInt64
    public var leaderEpoch: UInt64
    /// The sender's agent id; the leader checks it equals the id in the caller's certificate.
    public var senderID: String
    public var releaseVersion: String

    public init(rolloutID: UInt64 = 0, leaderEpoch: UInt64 = 0, senderID: String = "", releaseVersion: String = "") {
        self.rolloutID = rolloutID
        self.leaderEpoch = leaderEpoch
        self.senderID = senderID
        self.releaseVersion = releaseVersion
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            switch field.number {
            case 1: rolloutID = try field.uint64()
            case 2: leaderEpoch = try field.uint64()
            case 3: senderID = try field.string()
            case 4: releaseVersion = try field.string()
            default: continue
            }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, rolloutID)
        writer.put(2, leaderEpoch)
        writer.put(3, senderID)
        writer.put(4, releaseVersion)
    }
}

/// `cascade.Leader/UpgradeLeader` response.
public struct UpgradeLeaderResponse: WireMessage, Hashable, Sendable {
    /// The leader had already accepted a second instruction for this rollout (a repeat).
    public var alreadyUpgrading: Bool

    public init(alreadyUpgrading: Bool = false) {
        self.alreadyUpgrading = alreadyUpgrading
    }

    public init(from reader: inout MessageReader) throws(WireError) {
        self.init()
        while let field = try reader.next() {
            if field.number == 1 { alreadyUpgrading = try field.bool() }
        }
    }

    public func encode(to writer: inout MessageWriter) {
        writer.put(1, alreadyUpgrading)
    }
}
