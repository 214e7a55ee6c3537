import CascadeAPI
import CascadeCLI
import CascadeCrypto
import Foundation

/// The text and JSON forms of every message cascadectl prints. JSON keys are camelCase, every
/// time is one RFC 3339 UTC string with milliseconds (null when unset), sizes are exact byte
/// counts. Tables show times as ages ("12s ago") where recency is the point.
enum Render {
    // MARK: shared

    static func time(ms: UInt64) -> String {
        ms == 0 ? "-" : HumanFormat.timestamp(epochSeconds: Int64(clamping: ms / 1000))
    }

    static func timeJSON(ms: UInt64) -> JSONValue {
        ms == 0 ? .null : .string(HumanFormat.timestamp(epochMilliseconds: Int64(clamping: ms)))
    }

    /// "12s ago" for a table, "-" when unset.
    static func age(ms: UInt64) -> String {
        guard ms > 0 else { return "-" }
        let now = Int64(Date().timeIntervalSince1970)
        return HumanFormat.relative(epochSeconds: Int64(clamping: ms / 1000), now: now)
    }

    static func counts(_ counts: StateCounts) -> JSONValue {
        .object(AgentRolloutState.allCases.map { (stateKey($0), JSONValue.int(counts[$0])) })
    }

    /// `healthy 3 · downloading 1`, zero counts left out.
    static func countsText(_ counts: StateCounts) -> String {
        let parts = AgentRolloutState.allCases.filter { counts[$0] > 0 }.map { "\($0) \(counts[$0])" }
        return parts.isEmpty ? "-" : parts.joined(separator: " · ")
    }

    /// Agents done with the rollout, one way or the other.
    static func finished(_ counts: StateCounts) -> Int {
        Int(counts.healthy) + Int(counts.failed) + Int(counts.rolledBack)
    }

    static func stateKey(_ state: AgentRolloutState) -> String {
        state == .rolledBack ? "rolledBack" : state.description
    }

    // MARK: releases

    static func json(_ manifest: Manifest, signed: SignedManifest, file: String) -> JSONValue {
        ["name": .string(manifest.name), "version": .string(manifest.version), "size": .int(manifest.size),
         "chunkSize": .int(manifest.chunkSize), "chunkCount": .int(manifest.chunkCount), "sha256": .string(manifest.sha256.hex),
         "keyId": .string(signed.keyID), "createdAt": .int(manifest.createdAt), "manifest": .string(file),
         "manifestSha256": .string(signed.manifestDigest.hex)]
    }

    static func json(_ info: ReleaseInfo) -> JSONValue {
        ["version": .string(info.version), "name": .string(info.name), "size": .int(info.size),
         "chunkSize": .int(info.chunkSize), "chunkCount": .int(info.chunkCount), "chunksPresent": .int(info.chunksPresent),
         "complete": .bool(info.complete), "sha256": .string(info.sha256?.hex), "keyId": .string(info.keyID),
         "createdAt": timeJSON(ms: info.createdAt * 1000), "pushedAt": timeJSON(ms: info.pushedAtMs),
         "pushedBy": .string(info.pushedBy), "manifestSha256": .string(info.manifestSHA256?.hex),
         "damage": .string(info.damage.isEmpty ? nil : info.damage)]
    }

    static func releaseLines(_ info: ReleaseInfo) -> [String] {
        ["release   \(info.version) (\(info.name))",
         "size      \(info.size) bytes (\(HumanFormat.bytes(info.size)))",
         "chunks    \(info.chunksPresent) of \(info.chunkCount) held, \(HumanFormat.bytes(info.chunkSize)) each",
         "complete  \(info.complete ? "yes" : info.damage.isEmpty ? "no" : "no: DAMAGED, \(info.damage)")",
         "sha256    \(info.sha256?.hex ?? "-")",
         "key id    \(info.keyID)",
         "created   \(time(ms: info.createdAt * 1000))",
         "pushed    \(time(ms: info.pushedAtMs)) by \(info.pushedBy.isEmpty ? "-" : info.pushedBy)"]
    }

    static func releaseTable(_ releases: [ReleaseInfo]) -> [String] {
        var table = Table(columns: ["VERSION", "NAME", .right("SIZE"), .right("CHUNKS"), "COMPLETE", "KEY", "PUSHED", "BY"])
        for info in releases {
            table.append([info.version, info.name, HumanFormat.bytes(info.size), "\(info.chunksPresent)/\(info.chunkCount)",
                          info.complete ? "yes" : info.damage.isEmpty ? "no" : "DAMAGED", info.keyID, time(ms: info.pushedAtMs), info.pushedBy])
        }
        return releases.isEmpty ? ["no releases"] : table.lines
    }

    // MARK: rollouts

    static func json(_ policy: RolloutPolicy) -> JSONValue {
        ["maxUnavailable": .int(policy.effectiveMaxUnavailable), "maxParallelClusters": .int(policy.effectiveMaxParallelClusters),
         "canaryClusters": .int(policy.canaryClusters), "failureBudgetPercent": .int(policy.failureBudgetPercent),
         "healthTimeoutSeconds": .int(policy.effectiveHealthTimeoutSeconds), "rollback": .bool(policy.rollback)]
    }

    static func json(_ status: RolloutStatus) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .int(status.rolloutID)), ("release", .string(status.releaseVersion)), ("state", .string(status.state.description)),
            ("fromVersion", .string(status.fromVersion)), ("message", .string(status.message)),
            ("createdBy", .string(status.createdBy)), ("createdAt", timeJSON(ms: status.createdAtMs)),
            ("startedAt", timeJSON(ms: status.startedAtMs)), ("finishedAt", timeJSON(ms: status.finishedAtMs)),
            ("updatedAt", timeJSON(ms: status.updatedAtMs)), ("allClusters", .bool(status.clusters.isEmpty)),
            ("policy", json(status.policy)), ("totals", counts(status.totals)),
            ("clusterProgress", .array(status.clusterProgress.map(json))),
        ]
        // The scope, when the rollout names clusters (otherwise allClusters says it covers all).
        if !status.clusters.isEmpty { members.append(("clusters", .array(status.clusters.map { .string($0) }))) }
        if !status.agents.isEmpty { members.append(("agents", .array(status.agents.map(json)))) }
        return .object(members)
    }

    static func json(_ cluster: ClusterProgress) -> JSONValue {
        ["cluster": .string(cluster.clusterID), "phase": .string(cluster.phase.description), "wave": .int(cluster.wave),
         "leader": .string(cluster.leaderID), "leaderEpoch": .int(cluster.leaderEpoch), "counts": counts(cluster.counts),
         "done": .int(finished(cluster.counts)), "total": .int(cluster.counts.total),
         "bytesFromCoordinator": .int(cluster.bytesFromCoordinator), "bytesServed": .int(cluster.bytesServed),
         "message": .string(cluster.message)]
    }

    static func json(_ row: AgentRow) -> JSONValue {
        ["agent": .string(row.agentID), "cluster": .string(row.clusterID), "role": .string(row.role.description),
         "state": .string(row.progress.state.description), "release": .string(row.progress.releaseVersion),
         "bytesDone": .int(row.progress.bytesDone), "bytesTotal": .int(row.progress.bytesTotal),
         "error": .string(row.progress.error), "updatedAt": timeJSON(ms: row.updatedAtMs)]
    }

    /// `rollout 3 (release 1.1) is paused: maintenance window`.
    static func summary(_ status: RolloutStatus) -> String {
        "rollout \(status.rolloutID) (release \(status.releaseVersion)) is \(status.state)"
            + (status.message.isEmpty ? "" : ": \(status.message)")
    }

    static func statusLines(_ status: RolloutStatus) -> [String] {
        let policy = status.policy
        var lines = [
            "rollout   \(status.rolloutID)",
            "release   \(status.releaseVersion)" + (status.fromVersion.isEmpty ? "" : " (from \(status.fromVersion))"),
            "state     \(status.state)" + (status.message.isEmpty ? "" : ": \(status.message)"),
            "created   \(time(ms: status.createdAtMs)) by \(status.createdBy.isEmpty ? "-" : status.createdBy)",
            "started   \(time(ms: status.startedAtMs))",
            "finished  \(time(ms: status.finishedAtMs))",
            "policy    max-unavailable \(policy.effectiveMaxUnavailable), max-parallel-clusters \(policy.effectiveMaxParallelClusters), "
                + "canary-clusters \(policy.canaryClusters), failure-budget \(policy.failureBudgetPercent)%, "
                + "health-timeout \(policy.effectiveHealthTimeoutSeconds)s" + (policy.rollback ? ", rollback" : ""),
            "agents    \(finished(status.totals))/\(status.totals.total) done: \(countsText(status.totals))",
        ]
        if !status.clusterProgress.isEmpty {
            lines.append("")
            var table = Table(columns: ["CLUSTER", "PHASE", .right("WAVE"), "LEADER", .right("EPOCH"), .right("DONE"), "STATES",
                                        .right("FROM COORD"), .right("SERVED"), "MESSAGE"])
            for cluster in status.clusterProgress {
                table.append([cluster.clusterID, cluster.phase.description, "\(cluster.wave)",
                              cluster.leaderID.isEmpty ? "-" : cluster.leaderID, "\(cluster.leaderEpoch)",
                              "\(finished(cluster.counts))/\(cluster.counts.total)", countsText(cluster.counts),
                              HumanFormat.bytes(cluster.bytesFromCoordinator), HumanFormat.bytes(cluster.bytesServed), cluster.message])
            }
            lines += table.lines
        }
        if !status.agents.isEmpty {
            lines.append("")
            var table = Table(columns: ["AGENT", "CLUSTER", "ROLE", "STATE", .right("BYTES"), "UPDATED", "ERROR"])
            for row in status.agents {
                let bytes = row.progress.bytesTotal > 0
                    ? "\(HumanFormat.bytes(row.progress.bytesDone))/\(HumanFormat.bytes(row.progress.bytesTotal))"
                    : (row.progress.bytesDone > 0 ? HumanFormat.bytes(row.progress.bytesDone) : "-")
                table.append([row.agentID, row.clusterID, row.role.description, row.progress.state.description, bytes,
                              time(ms: row.updatedAtMs), row.progress.error])
            }
            lines += table.lines
        }
        return lines
    }

    static func rolloutTable(_ rollouts: [RolloutStatus]) -> [String] {
        guard !rollouts.isEmpty else { return ["no rollouts"] }
        var table = Table(columns: [.right("ID"), "RELEASE", "STATE", .right("DONE"), "CREATED", "BY", "MESSAGE"])
        for status in rollouts {
            table.append(["\(status.rolloutID)", status.releaseVersion, status.state.description,
                          "\(finished(status.totals))/\(status.totals.total)", time(ms: status.createdAtMs), status.createdBy,
                          status.message])
        }
        return table.lines
    }

    /// What `rollout watch` draws for one status.
    static func snapshot(_ status: RolloutStatus, etas: [String: Duration]) -> LiveSnapshot {
        let rows = status.clusterProgress.map { cluster in
            LiveRow(name: cluster.clusterID, done: finished(cluster.counts), total: Int(cluster.counts.total),
                    states: AgentRolloutState.allCases.map { LiveRow.StateCount($0.description, Int(cluster.counts[$0])) },
                    bytes: Int64(clamping: cluster.bytesFromCoordinator + cluster.bytesServed),
                    eta: etas[cluster.clusterID])
        }
        let bytes = status.clusterProgress.reduce(UInt64(0)) { $0 + $1.bytesFromCoordinator + $1.bytesServed }
        var footer = "total     \(finished(status.totals))/\(status.totals.total) done · \(countsText(status.totals)) · \(HumanFormat.bytes(bytes))"
        if let eta = etas[""], !status.state.isTerminal, finished(status.totals) < Int(status.totals.total) {
            footer += " · ETA \(HumanFormat.duration(eta))"
        }
        let title = "rollout \(status.rolloutID) (release \(status.releaseVersion)): \(status.state)"
            + (status.message.isEmpty ? "" : " — \(status.message)")
        return LiveSnapshot(title: title, rows: rows, footer: [footer])
    }

    // MARK: fleet

    static func json(_ agent: AgentInfo) -> JSONValue {
        ["agent": .string(agent.agentID), "address": .string(agent.address), "memberPort": .int(agent.memberPort),
         "cluster": .string(agent.clusterID), "role": .string(agent.role.description), "mainVersion": .string(agent.mainVersion),
         "upgraderVersion": .string(agent.upgraderVersion), "cpuIdle": .double(agent.idle.cpu), "memIdle": .double(agent.idle.memory),
         "connected": .bool(agent.connected), "hostname": .string(agent.hostname), "lastSeen": timeJSON(ms: agent.lastSeenMs),
         "registeredAt": timeJSON(ms: agent.registeredAtMs)]
    }

    static func agentTable(_ agents: [AgentInfo]) -> [String] {
        guard !agents.isEmpty else { return ["no agents"] }
        var table = Table(columns: ["AGENT", "ADDRESS", "CLUSTER", "ROLE", "VERSION", .right("CPU IDLE"), .right("MEM IDLE"),
                                    "CONNECTED", "LAST SEEN", "HOST"])
        for agent in agents {
            let version = agent.mainVersion == agent.upgraderVersion ? agent.mainVersion : "\(agent.mainVersion)/\(agent.upgraderVersion)"
            table.append([agent.agentID, agent.address, agent.clusterID, agent.role.description, version,
                          HumanFormat.percent(agent.idle.cpu * 100), HumanFormat.percent(agent.idle.memory * 100),
                          agent.connected ? "yes" : "no", time(ms: agent.lastSeenMs), agent.hostname.isEmpty ? "-" : agent.hostname])
        }
        return table.lines
    }

    static func json(_ cluster: ClusterInfo) -> JSONValue {
        ["cluster": .string(cluster.clusterID), "prefix": .string(cluster.prefix), "leader": .string(cluster.leaderID),
         "leaderAddress": .string(cluster.leaderAddress), "leaderEpoch": .int(cluster.leaderEpoch),
         "agents": .int(cluster.agentCount), "connected": .int(cluster.connectedCount), "leaderSince": timeJSON(ms: cluster.leaderSinceMs)]
    }

    static func clusterTable(_ clusters: [ClusterInfo]) -> [String] {
        guard !clusters.isEmpty else { return ["no clusters"] }
        var table = Table(columns: ["CLUSTER", "LEADER", "LEADER ADDRESS", .right("EPOCH"), .right("AGENTS"), .right("CONNECTED"),
                                    "LEADER SINCE"])
        for cluster in clusters {
            table.append([cluster.clusterID, cluster.leaderID.isEmpty ? "-" : cluster.leaderID,
                          cluster.leaderAddress.isEmpty ? "-" : cluster.leaderAddress, "\(cluster.leaderEpoch)",
                          "\(cluster.agentCount)", "\(cluster.connectedCount)", age(ms: cluster.leaderSinceMs)])
        }
        return table.lines
    }

    static func json(_ event: Event) -> JSONValue {
        ["id": .int(event.id), "at": timeJSON(ms: event.atMs), "actor": .string(event.actor),
         "kind": .string(event.kind), "rollout": event.rolloutID == 0 ? .null : .int(event.rolloutID),
         "cluster": .string(event.clusterID.isEmpty ? nil : event.clusterID),
         "agent": .string(event.agentID.isEmpty ? nil : event.agentID), "detail": .string(event.detail)]
    }

    static func eventTable(_ events: [Event]) -> [String] {
        guard !events.isEmpty else { return ["no events"] }
        var table = Table(columns: [.right("ID"), "TIME", "ACTOR", "KIND", "DETAIL"])
        for event in events {
            table.append(["\(event.id)", time(ms: event.atMs), event.actor, event.kind, event.detail])
        }
        return table.lines
    }
}
