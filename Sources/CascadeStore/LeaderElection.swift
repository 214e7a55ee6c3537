/// The idle weight of an agent: `w = cpu × cpuIdle + memory × memIdle`, with idle ratios in
/// [0, 1] sampled by the agent from /proc. Defaults 0.6 and 0.4: CPU counts more because
/// serving chunks to members (hashing, TLS) is CPU-bound, while memory mostly needs to be not
/// exhausted. The weights need not sum to 1; only the order of weights matters.
public struct IdleWeights: Hashable, Sendable {
    public let cpu: Double
    public let memory: Double

    public static let `default` = IdleWeights(validCPU: 0.6, memory: 0.4)

    public init(cpu: Double = 0.6, memory: Double = 0.4) throws(StoreError) {
        guard cpu.isFinite, memory.isFinite, cpu >= 0, memory >= 0, cpu + memory > 0 else {
            throw StoreError(.invalidArgument, "idle weights must be finite, non-negative and not both zero (cpu \(cpu), memory \(memory))")
        }
        self.init(validCPU: cpu, memory: memory)
    }

    private init(validCPU cpu: Double, memory: Double) {
        self.cpu = cpu
        self.memory = memory
    }

    public func weight(cpuIdle: Double, memoryIdle: Double) -> Double {
        cpu * cpuIdle + memory * memoryIdle
    }
}

/// An agent as leader election sees it.
public struct LeaderCandidate: Hashable, Sendable {
    public let id: String
    public let weight: Double
    public let isLive: Bool

    public init(id: String, weight: Double, isLive: Bool) {
        self.id = id
        self.weight = weight
        self.isLive = isLive
    }
}

/// Pure leader choice (no SQL): the patent's third server is the cluster's highest-weight live
/// agent; its fifth (acting leader) and sixth servers are chosen the same way among the live
/// members, resp. the upgraded ones.
public enum LeaderElection {
    /// Highest weight first; equal weights by smallest id (byte order, as SQLite sorts TEXT),
    /// so every coordinator run picks the same agent.
    public static func precedes(_ lhs: LeaderCandidate, _ rhs: LeaderCandidate) -> Bool {
        if lhs.weight != rhs.weight { return lhs.weight > rhs.weight }
        return lhs.id.utf8.lexicographicallyPrecedes(rhs.id.utf8)
    }

    /// The live candidates, best first.
    public static func ranked(_ candidates: [LeaderCandidate]) -> [LeaderCandidate] {
        candidates.filter(\.isLive).sorted(by: precedes)
    }

    /// The best live candidate, if any.
    public static func best(_ candidates: [LeaderCandidate]) -> LeaderCandidate? {
        candidates.filter(\.isLive).min(by: precedes)
    }

    /// The cluster's leader after this decision: the current leader while it is live (weights
    /// move on every heartbeat; a leader that changed with them would churn sessions and
    /// epochs), otherwise the best live candidate. When no one is live the current leader
    /// stays recorded, so the cluster does not bump its epoch for nothing.
    public static func decide(current: String?, candidates: [LeaderCandidate]) -> String? {
        if let current, candidates.contains(where: { $0.id == current && $0.isLive }) { return current }
        return best(candidates)?.id ?? current
    }
}
