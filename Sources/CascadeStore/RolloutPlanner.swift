/// Pure planning of which clusters a rollout covers and in which order (no SQL).
public enum RolloutPlanner {
    /// The clusters in the policy's scope, in rollout order: the policy's prefixes in the order
    /// given (each may be written in any form `SubnetPrefix(parsing:)` accepts), or every cluster
    /// by subnet order when the list is empty. The first `canaryClusters` form wave 0 and the
    /// rest wave 1; without canaries every cluster is in wave 0.
    public static func plan(policy: RolloutPolicy, clusters: [ClusterRecord]) throws(StoreError) -> [RolloutClusterPlan] {
        var selected: [ClusterRecord] = []
        if policy.clusters.isEmpty {
            selected = clusters.sorted { lhs, rhs in
                switch (SubnetPrefix(parsing: lhs.prefix), SubnetPrefix(parsing: rhs.prefix)) {
                case let (left?, right?): left < right
                default: lhs.prefix < rhs.prefix
                }
            }
        } else {
            let byPrefix = Dictionary(clusters.map { ($0.prefix, $0) }, uniquingKeysWith: { first, _ in first })
            for text in policy.clusters {
                guard let prefix = SubnetPrefix(parsing: text) else {
                    throw StoreError(.invalidArgument, "'\(text)' is not a subnet prefix such as 127.0.1.0/24")
                }
                guard let cluster = byPrefix[prefix.description] else {
                    throw StoreError(.invalidArgument, "no cluster \(prefix) is known")
                }
                guard !selected.contains(where: { $0.id == cluster.id }) else {
                    throw StoreError(.invalidArgument, "cluster \(prefix) is listed twice")
                }
                selected.append(cluster)
            }
        }
        guard !selected.isEmpty else { throw StoreError(.failedPrecondition, "there are no clusters to roll out to") }
        let canaries = policy.canaryClusters
        return selected.enumerated().map { offset, cluster in
            RolloutClusterPlan(clusterID: cluster.id, wave: canaries > 0 && offset >= canaries ? 1 : 0)
        }
    }
}
