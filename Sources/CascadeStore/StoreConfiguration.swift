/// Tunables of the store's fleet logic. Every field has a documented default.
public struct StoreConfiguration: Sendable, Hashable {
    /// Subnet prefix lengths that form clusters (default IPv4 /24, IPv6 /64).
    public var prefixLengths: PrefixLengths
    /// Idle weight coefficients (default cpu 0.6, memory 0.4).
    public var weights: IdleWeights
    /// An online agent not heard from for longer than this is not live: it cannot be elected,
    /// and a leader in that state is replaced. Default 30 s (three missed 10 s heartbeats).
    public var livenessTimeout: Duration
    /// Hard deadlines for the per-agent rollout states.
    public var agentTimeouts: AgentStateTimeouts
    /// How long a write waits for another process's lock before failing with `.busy`. Default 5 s.
    public var busyTimeout: Duration

    public init(
        prefixLengths: PrefixLengths = .default,
        weights: IdleWeights = .default,
        livenessTimeout: Duration = .seconds(30),
        agentTimeouts: AgentStateTimeouts = AgentStateTimeouts(),
        busyTimeout: Duration = .seconds(5)
    ) {
        self.prefixLengths = prefixLengths
        self.weights = weights
        self.livenessTimeout = livenessTimeout
        self.agentTimeouts = agentTimeouts
        self.busyTimeout = busyTimeout
    }
}

/// How long an agent may stay in each working state of a rollout before the coordinator fails
/// it, so nothing is "stuck updating" forever. `pending` has no deadline (the agent waits for
/// its turn; the rollout's own state bounds that) and terminal states need none.
public struct AgentStateTimeouts: Sendable, Hashable {
    /// From the instruction to the first download report. Default 2 min.
    public var instructed: Duration
    /// The whole download. Default 30 min.
    public var downloading: Duration
    /// Added to the rollout's health timeout for installing (two process restarts and the
    /// upgrader's swap). Default 2 min.
    public var installingMargin: Duration

    public init(instructed: Duration = .seconds(120), downloading: Duration = .seconds(1800), installingMargin: Duration = .seconds(120)) {
        self.instructed = instructed
        self.downloading = downloading
        self.installingMargin = installingMargin
    }

    /// The time allowed in `state` for a rollout whose health timeout is `healthTimeoutSeconds`.
    public func limit(for state: RolloutAgentState, healthTimeoutSeconds: Int) -> Duration? {
        switch state {
        case .instructed: instructed
        case .downloading: downloading
        case .installing: .seconds(healthTimeoutSeconds) + installingMargin
        case .pending, .healthy, .failed, .rolledBack: nil
        }
    }
}
