import CascadeAPI

/// The leader's bookkeeping for one rollout in its cluster: who is where, who may be sent the
/// first instruction now (at most `maxUnavailable` in flight), and who sends the second one.
/// Pure logic, no I/O: the leader service drives it and acts on its answers.
struct RolloutPacer: Sendable {
    let rolloutID: UInt64
    let targetVersion: String
    let maxUnavailable: Int
    /// Failed or rolled-back members at which the rollout's budget is spent (0: none given).
    /// The coordinator lowers it on re-sends as other clusters fail.
    var failureLimit: Int
    private(set) var states: [String: AgentRolloutState]
    private(set) var paused = false
    private(set) var aborted = false
    /// The member told to send the second instruction, if any.
    private(set) var cuedMember: String?
    /// The most members in flight at once so far (for status and tests).
    private(set) var peakInFlight = 0

    /// `known` is what the coordinator recorded for the members (after a failover or restart).
    init(order: ClusterRolloutOrder, memberIDs: [String]) {
        rolloutID = order.rolloutID
        targetVersion = order.releaseVersion
        maxUnavailable = Int(order.policy.effectiveMaxUnavailable)
        failureLimit = Int(order.failureLimit)
        var states: [String: AgentRolloutState] = [:]
        for id in memberIDs { states[id] = .pending }
        for member in order.members where states[member.agentID] != nil {
            if let progress = member.progress, progress.rolloutID == order.rolloutID {
                states[member.agentID] = progress.state
            } else if member.heartbeat?.mainVersion == order.releaseVersion {
                states[member.agentID] = .healthy
            }
        }
        self.states = states
    }

    static func isInFlight(_ state: AgentRolloutState) -> Bool {
        switch state {
        case .instructed, .downloading, .installing: true
        default: false
        }
    }

    var inFlight: Int { states.values.filter(Self.isInFlight).count }
    /// The failures this leader has seen spend the rollout's budget: it starts nothing more,
    /// without waiting for the coordinator's abort (services.md §3.4, the budget's bound).
    var budgetSpent: Bool {
        failureLimit > 0 && states.values.filter { $0 == .failed || $0 == .rolledBack }.count >= failureLimit
    }
    var allTerminal: Bool { states.values.allSatisfy(\.isTerminal) }

    /// A member's own report. When a member (re)joins saying nothing of this rollout while we
    /// count it in flight, it never got (or lost) its order: it goes back to pending and is sent
    /// it again (members ignore a repeated order for a rollout they already run). Later reports
    /// without progress change nothing: the order may simply not have arrived yet.
    mutating func update(_ member: String, progress: AgentProgress?, mainVersion: String?, rejoined: Bool) {
        guard let current = states[member] else { return }
        if let progress, progress.rolloutID == rolloutID, progress.state != .unspecified {
            states[member] = progress.state
        } else if mainVersion == targetVersion {
            states[member] = .healthy
        } else if rejoined && Self.isInFlight(current) {
            states[member] = .pending
        }
    }

    /// Members to send the first instruction to now, marked instructed: pending, connected,
    /// in id order, up to the free slots.
    mutating func nextToInstruct(connected: Set<String>) -> [String] {
        guard !paused && !aborted && !budgetSpent else { return [] }
        let free = maxUnavailable - inFlight
        guard free > 0 else { return [] }
        let chosen = states.filter { $0.value == .pending && connected.contains($0.key) }.keys.sorted().prefix(free)
        for id in chosen { states[id] = .instructed }
        peakInFlight = max(peakInFlight, inFlight)
        return Array(chosen)
    }

    /// Every member is done and none was cued yet: the healthy, connected member with the
    /// highest idle weight (the sixth server), or nil if there is none (yet).
    mutating func memberToCue(idle: [String: IdleRatios], connected: Set<String>, weights: IdleWeights) -> String? {
        guard !aborted, !paused, !budgetSpent, cuedMember == nil, allTerminal else { return nil }
        let candidates = states.filter { $0.value == .healthy && connected.contains($0.key) }.keys
            .map { (id: $0, idle: idle[$0] ?? IdleRatios()) }
        guard let best = weights.best(of: candidates) else { return nil }
        cuedMember = best
        return best
    }

    /// The cued member went away before sending the second instruction: cue again later.
    mutating func forgetCue(of member: String) {
        if cuedMember == member { cuedMember = nil }
    }

    mutating func apply(_ action: RolloutAction) {
        switch action {
        case .pause: paused = true
        case .resume: paused = false
        case .abort: aborted = true
        default: break
        }
    }
}
