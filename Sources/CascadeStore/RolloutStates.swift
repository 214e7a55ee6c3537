/// A rollout's life: `requested → running ⇄ paused → succeeded | partial | failed | aborted`.
///
/// - requested → running (the engine started it), failed (it cannot start), aborted (operator).
/// - running → paused, succeeded, partial, failed, aborted. `partial` is "succeeded with some
///   agents failed or rolled back, within the failure budget": every cluster finished, but not
///   every agent runs the release, so it must not read as `succeeded`.
/// - paused → running (resume), failed, aborted. Not succeeded: a paused rollout does no
///   work, so it is resumed and then finishes.
/// - succeeded, partial, failed, aborted are final. A transition to the current state is illegal too
///   (an operator pausing a paused rollout gets told so).
public enum RolloutState: String, Hashable, Sendable, CaseIterable {
    case requested, running, paused, succeeded, partial, failed, aborted

    public var isTerminal: Bool { self == .succeeded || self == .partial || self == .failed || self == .aborted }

    public func canTransition(to next: RolloutState) -> Bool {
        switch (self, next) {
        case (.requested, .running), (.requested, .failed), (.requested, .aborted): true
        case (.running, .paused), (.running, .succeeded), (.running, .partial), (.running, .failed), (.running, .aborted): true
        case (.paused, .running), (.paused, .failed), (.paused, .aborted): true
        default: false
        }
    }
}

/// One cluster's part of a rollout: `pending → running → succeeded | failed`, and
/// `pending | running → aborted` (the rollout ended before the cluster finished).
/// Re-entering the current state is accepted and changes nothing (an engine replaying its
/// last step after a restart).
public enum RolloutClusterState: String, Hashable, Sendable, CaseIterable {
    case pending, running, succeeded, failed, aborted

    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .aborted }

    public func canTransition(to next: RolloutClusterState) -> Bool {
        switch (self, next) {
        case (.pending, .running), (.pending, .aborted): true
        case (.running, .succeeded), (.running, .failed), (.running, .aborted): true
        default: false
        }
    }
}

/// One agent's part of a rollout: `pending → instructed → downloading → installing → healthy`,
/// ending in `healthy`, `failed` or `rolled-back`.
///
/// - Forward moves may skip states (pending → downloading, instructed → healthy, ...): leaders
///   coalesce their members' reports, so a fast member's intermediate states can be lost.
///   pending → healthy is how an agent already on the target version is recorded.
/// - Any non-terminal state → failed (an error report, or its deadline passed).
/// - instructed, downloading, installing → rolled-back (the upgrader restored the previous
///   release); a pending agent attempted nothing, so it cannot roll back.
/// - Never backwards, never out of a terminal state. Re-entering the current state is accepted
///   and changes nothing (a re-sent report), without resetting the deadline.
public enum RolloutAgentState: String, Hashable, Sendable, CaseIterable {
    case pending, instructed, downloading, installing, healthy, failed
    case rolledBack = "rolled-back"

    public var isTerminal: Bool { self == .healthy || self == .failed || self == .rolledBack }
    /// At work now (each of these states has a hard deadline).
    public var isInFlight: Bool { self == .instructed || self == .downloading || self == .installing }

    private var progress: Int {
        switch self {
        case .pending: 0
        case .instructed: 1
        case .downloading: 2
        case .installing: 3
        case .healthy: 4
        case .failed, .rolledBack: -1
        }
    }

    public func canTransition(to next: RolloutAgentState) -> Bool {
        guard !isTerminal, next != self else { return false }
        switch next {
        case .failed: return true
        case .rolledBack: return self != .pending
        default: return next.progress > progress
        }
    }
}
