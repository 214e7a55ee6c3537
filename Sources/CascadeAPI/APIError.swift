public import CascadeRPC

/// The statuses Cascade handlers answer with for the conditions services.md §5 names, so every
/// program words them the same way and callers can rely on the codes.
public enum APIError {
    /// An instruction, report or call carries a leader epoch other than the receiver's.
    public static func staleEpoch(_ got: UInt64, current: UInt64) -> RPCError {
        got < current
            ? RPCError(.failedPrecondition, "leader epoch \(got) is stale: the current epoch is \(current)")
            : RPCError(.failedPrecondition, "leader epoch \(got) is newer than this node's epoch \(current): register again")
    }

    /// An agent acted for another id, or a member of another cluster called a leader.
    public static func notYours(_ what: String) -> RPCError {
        RPCError(.permissionDenied, what)
    }

    /// The callee is not (or no longer) the leader the caller thinks it is.
    public static func notLeader(_ agentID: String, leaderID: String) -> RPCError {
        RPCError(.failedPrecondition,
            leaderID.isEmpty ? "\(agentID) is not a leader" : "\(agentID) is not the leader; the leader is \(leaderID)")
    }

    public static func unknownRelease(_ version: String) -> RPCError {
        RPCError(.notFound, "no release \(version)")
    }

    public static func unknownRollout(_ id: UInt64) -> RPCError {
        RPCError(.notFound, "no rollout \(id)")
    }

    /// A rollout state change the state machine does not allow.
    public static func illegalTransition(rollout id: UInt64, from state: RolloutState, action: String) -> RPCError {
        RPCError(.failedPrecondition, "rollout \(id) is \(state) and cannot \(action)")
    }

    /// A required field is absent or holds a value outside its documented range.
    public static func invalid(_ what: String) -> RPCError {
        RPCError(.invalidArgument, what)
    }
}

/// Accepts only the receiver's own epoch (services.md §3.5): a lower one comes from a stale
/// leader, a higher one means the receiver's own assignment is stale. Either way the sender or
/// the receiver must `Register` again, so both are FAILED_PRECONDITION.
public func checkEpoch(_ got: UInt64, current: UInt64) throws(RPCError) {
    guard got == current else { throw APIError.staleEpoch(got, current: current) }
}
