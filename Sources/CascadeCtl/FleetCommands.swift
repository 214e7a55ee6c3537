import CascadeAPI
import CascadeCLI

extension CascadeCtl {
    static let agentsCommand = Command(
        "agents", summary: "The agents the coordinator knows.",
        subcommands: [
            Command("list", summary: "List agents: address, cluster, role, versions, idle ratios, liveness.",
                    options: [.value("cluster", valueName: "PREFIX", help: "Only this cluster (e.g. 10.0.1.0/24).")],
                    run: listAgents),
        ])

    static let clustersCommand = Command(
        "clusters", summary: "Clusters (one per subnet) and their leaders.",
        subcommands: [
            Command("list", summary: "List clusters with their leader, epoch and size.", run: listClusters),
            Command("move-leader", summary: "Make AGENT the leader of CLUSTER (bumps the leader epoch).",
                    positionals: [PositionalSpec("CLUSTER", help: "The cluster's prefix, e.g. 10.0.1.0/24."),
                                  PositionalSpec("AGENT", help: "The agent id of the new leader.")],
                    run: moveLeader),
        ])

    static let eventsCommand = Command(
        "events", summary: "The audit log: who did what, when.",
        options: [
            .value("limit", short: "n", valueName: "N", help: "At most this many (the latest).", default: "50"),
            .value("rollout", valueName: "ID", help: "Only events of this rollout."),
            .value("agent", valueName: "ID", help: "Only events of this agent."),
            .value("cluster", valueName: "PREFIX", help: "Only events of this cluster."),
        ],
        run: listEvents)

    static func listAgents(_ context: CommandContext) async throws {
        let connection = try Connection(context)
        let cluster = context.arguments.optionalString("cluster") ?? ""
        var agents: [AgentInfo] = []
        var after = ""
        while true {
            let page = try await connection.call(
                OperatorService.listAgents, ListAgentsRequest(clusterID: cluster, limit: 1000, afterAgentID: after))
            agents += page.agents
            guard page.more, let last = page.agents.last else { break }
            after = last.agentID
        }
        try context.emit(.array(agents.map(Render.json)), Render.agentTable(agents))
    }

    static func listClusters(_ context: CommandContext) async throws {
        let connection = try Connection(context)
        let clusters = try await connection.call(OperatorService.listClusters, ListClustersRequest()).clusters
        try context.emit(.array(clusters.map(Render.json)), Render.clusterTable(clusters))
    }

    static func moveLeader(_ context: CommandContext) async throws {
        let cluster = context.arguments.positional("CLUSTER"), agent = context.arguments.positional("AGENT")
        let connection = try Connection(context)
        let info = try await connection.call(OperatorService.moveLeader, MoveLeaderRequest(clusterID: cluster, agentID: agent))
        try context.emit(Render.json(info),
                         ["cluster \(info.clusterID): leader \(info.leaderID) (epoch \(info.leaderEpoch))"])
    }

    static func listEvents(_ context: CommandContext) async throws {
        let arguments = context.arguments
        let limit = try arguments.int("limit", in: 1...10_000)
        let rollout = try arguments.typed("rollout", expected: "a rollout id", parse: { UInt64($0) }) ?? 0
        let request = ListEventsRequest(
            limit: UInt32(limit), rolloutID: rollout, clusterID: arguments.optionalString("cluster") ?? "",
            agentID: arguments.optionalString("agent") ?? "")
        let connection = try Connection(context)
        let events = try await connection.call(OperatorService.listEvents, request).events
        try context.emit(.array(events.map(Render.json)), Render.eventTable(events))
    }
}
