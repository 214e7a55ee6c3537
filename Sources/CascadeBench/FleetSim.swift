import CascadeAPI
import CascadeAgentRuntime
import CascadeNet
import CascadeRPC
import Foundation

/// `fleet-sim`: a real coordinator child process and N AgentRuntimes in this process, one
/// signed release rolled out to all of them. See Benchmarks/README.md for what each figure means.
public enum FleetSim {
    public static func run(_ arguments: ArraySlice<String>) async throws {
        let options = try Options(arguments, flags: ["keep"])
        let agents = try options.int("agents", default: 1000)
        let subnets = try options.int("subnets", default: 40)
        let releaseBytes = try options.int("release-mib", default: 8) * 1024 * 1024
        let specs = try SimAgentSpec.fleet(agents: agents, subnets: subnets)
        let perCluster = (agents + subnets - 1) / subnets
        // Every member of a cluster at once and every cluster at once: the fastest policy, and the
        // one that loads the coordinator hardest (40 leaders fetching together).
        let maxUnavailable = try options.int("max-unavailable", default: perCluster)
        let parallel = try options.int("parallel-clusters", default: subnets)
        let timeout = try parseDuration(options.string("timeout", default: "600s"))
        let binary = try options.string("coordinator-binary", default: defaultCoordinatorBinary())
        let engineInterval = try options.string("engine-interval", default: "1s")
        let reportInterval = try options.string("report-interval", default: "5s")
        let idleWindow = try parseDuration(options.string("idle-window", default: "5s"))
        let streamRuns = try options.int("stream-runs", default: 3)
        // Agents' staging files: a tmpfs when there is one ("installing into memory").
        let shm = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : nil
        let stateBase = try options.string("state-dir", default: shm ?? NSTemporaryDirectory())

        let fdLimit = raiseFileLimit()
        ChildRegistry.shared.installSignalHandlers()
        let work = try makeWorkDirectory(try? options.string("work-dir"), prefix: "cascade-fleet-sim")
        let stateRoot = try makeWorkDirectory(stateBase, prefix: "cascade-fleet-state")
        let say: @Sendable (String) -> Void = { line in emitLine("fleet-sim: \(line)", to: 2) }
        say("\(agents) agents in \(subnets) subnets, release \(releaseBytes) bytes, fd limit \(fdLimit), work \(work), agent state \(stateRoot)")

        let setupStart = MonotonicTime.now()
        let pki = try FleetPKI(directory: "\(work)/certs")
        let coordinatorTLS = try pki.issue(role: "coordinator", id: "main")
        let agentTLS = try await pki.issueAgents(specs.map { ($0.id, $0.ip) })
        let release = try FleetRelease(version: "1.1.0", size: releaseBytes, directory: work)
        say("issued \(agentTLS.count + 2) certificates and signed the release in \(format(MonotonicTime.now().seconds(since: setupStart))) s")

        let coordinator = try await CoordinatorProcess.start(binary: binary, arguments: [
            "--data", "\(work)/coordinator", "--listen", "127.0.0.1:0", "--ca", pki.caFile,
            "--cert", coordinatorTLS.certificateChainFile, "--key", coordinatorTLS.privateKeyFile,
            "--trusted-key", release.publicKeyFile, "--engine-interval", engineInterval, "--report-interval", reportInterval,
        ], logFile: "\(work)/coordinator.log")
        emitLine("coordinator pid \(coordinator.pid) listening on \(coordinator.address)")
        let fleet = SimFleet()
        var failure: (any Error)?
        do {
            try await measure(
                coordinator: coordinator, fleet: fleet, pki: pki, release: release, specs: specs, agentTLS: agentTLS,
                stateRoot: stateRoot, policy: RolloutPolicy(maxUnavailable: UInt32(maxUnavailable), maxParallelClusters: UInt32(parallel)),
                timeout: timeout, idleWindow: idleWindow, streamRuns: streamRuns, say: say)
        } catch {
            failure = error
            say("failed: \(error); last agent log lines:")
            for line in fleet.lastLogs.withLock({ $0 }) { say("  | \(line)") }
            say("coordinator log: \(coordinator.logFile)")
        }
        await fleet.shutdown()
        await coordinator.stop()
        ChildRegistry.shared.killAll()
        try? FileManager.default.removeItem(atPath: stateRoot)
        if options.flag("keep") || failure != nil {
            say("kept \(work)")
        } else {
            try? FileManager.default.removeItem(atPath: work)
        }
        if let failure { throw failure }
    }

    private static func measure(
        coordinator: CoordinatorProcess, fleet: SimFleet, pki: FleetPKI, release: FleetRelease, specs: [SimAgentSpec],
        agentTLS: [String: TLSConfiguration], stateRoot: String, policy: RolloutPolicy, timeout: Duration,
        idleWindow: Duration, streamRuns: Int, say: @escaping @Sendable (String) -> Void
    ) async throws {
        let bare = coordinator.sample
        let ownBare = ProcSample.own
        let op = try FleetOperator(pki: pki, coordinator: coordinator.address)
        defer { op.client.close() }
        try await op.push(release)

        // Single-stream baseline, before the fleet exists (nothing else competes for the cores).
        var streams: [Double] = []
        for run in 0..<streamRuns {
            streams.append(try await singleStreamFetch(pki: pki, coordinator: coordinator.address, release: release, id: "probe\(run)"))
        }
        let stream = median(streams)
        say("single stream: \(streams.map(format)) s (median \(format(stream)) s, \(format(Double(release.bytes.count) / 1e6 / stream)) MB/s)")

        // Leaders first, so each subnet's k=0 agent (the idlest) leads: the coordinator elects
        // only when a cluster has no live leader.
        let registerStart = MonotonicTime.now()
        let leaders = specs.filter(\.isLeader), members = specs.filter { !$0.isLeader }
        try fleet.start(leaders, tls: agentTLS, coordinator: coordinator.address, releaseKey: release.key.publicKey,
                        stateRoot: stateRoot, version: "1.0.0")
        guard try await fleet.waitUntilRegistered(Set(leaders.map(\.id)), leaders: true, within: .seconds(120)) else {
            throw BenchError("the \(leaders.count) leaders did not all register and lead within 120 s")
        }
        try fleet.start(members, tls: agentTLS, coordinator: coordinator.address, releaseKey: release.key.publicKey,
                        stateRoot: stateRoot, version: "1.0.0")
        guard try await fleet.waitUntilRegistered(Set(specs.map(\.id)), leaders: false, within: .seconds(300)) else {
            throw BenchError("not every agent registered within 300 s")
        }
        let registerSeconds = MonotonicTime.now().seconds(since: registerStart)
        say("\(specs.count) agents registered and hold sessions after \(format(registerSeconds)) s")

        // Idle: every session open, heartbeats at the report interval.
        try await Task.sleep(for: idleWindow)
        let idleStart = coordinator.sample
        let idleClock = MonotonicTime.now()
        try await Task.sleep(for: idleWindow)
        let idleEnd = coordinator.sample
        let idleSeconds = MonotonicTime.now().seconds(since: idleClock)
        let wcharIdleRate = Double(idleEnd.wchar - idleStart.wchar) / idleSeconds
        let ownIdle = ProcSample.own
        let perSessionKiB = Double(idleEnd.rssKiB - bare.rssKiB) / Double(specs.count)
        say("idle: coordinator RSS \(mib(bare.rssKiB)) MiB bare, \(mib(idleEnd.rssKiB)) MiB with \(specs.count) sessions (\(format(perSessionKiB)) KiB each); wchar \(format(wcharIdleRate / 1024)) KiB/s")

        let socketsBefore = socketBytesSent(fromPort: coordinator.address.port)
        let before = coordinator.sample
        let rolloutStart = MonotonicTime.now()
        let id = try await op.startRollout(release.version, policy: policy)
        var lastPrint = rolloutStart
        let status = try await op.waitForRollout(id, within: timeout) { status in
            // A progress line every few seconds, so a slow run shows where it is.
            guard MonotonicTime.now().seconds(since: lastPrint) >= 3 else { return }
            lastPrint = MonotonicTime.now()
            say("rollout \(id) \(status.state) at \(format(lastPrint.seconds(since: rolloutStart))) s: healthy \(status.totals.healthy), downloading \(status.totals.downloading), installing \(status.totals.installing), failed \(status.totals.failed)")
        }
        let rolloutSeconds = MonotonicTime.now().seconds(since: rolloutStart)
        let after = coordinator.sample
        let socketsAfter = socketBytesSent(fromPort: coordinator.address.port)
        guard status.state == .succeeded else {
            throw BenchError("rollout \(id) ended \(status.state) after \(format(rolloutSeconds)) s: \(status.message) (totals \(status.totals))")
        }

        let statuses = fleet.statuses
        let upgraded = statuses.filter { $0.mainVersion == release.version }.count
        guard upgraded == specs.count else { throw BenchError("only \(upgraded) of \(specs.count) agents run \(release.version)") }
        let size = Double(release.bytes.count)
        let clusters = Double(Set(specs.map(\.subnet)).count)
        let artifact = Double(statuses.reduce(UInt64(0)) { $0 + $1.bytesFromCoordinator })
        let fromLeaders = Double(statuses.reduce(UInt64(0)) { $0 + $1.bytesFromLeader })
        // The coordinator's own count of artifact bytes it sent, per cluster, in the rollout status.
        let counted = Double(status.clusterProgress.reduce(UInt64(0)) { $0 + $1.bytesFromCoordinator })
        let wchar = Double(after.wchar - before.wchar) - wcharIdleRate * rolloutSeconds
        let socket = socketsAfter.flatMap { a in socketsBefore.map { Double(a.bytes) - Double($0.bytes) } } ?? -1
        let own = ProcSample.own
        let fields: [(String, String)] = [
            ("agents", "\(specs.count)"), ("clusters", "\(Int(clusters))"), ("release_bytes", "\(release.bytes.count)"),
            ("max_unavailable", "\(policy.maxUnavailable)"), ("parallel_clusters", "\(policy.maxParallelClusters)"),
            ("register_s", format(registerSeconds)), ("rollout_s", format(rolloutSeconds)),
            ("single_stream_s", format(stream)), ("rollout_over_stream", format(rolloutSeconds / stream)),
            ("rollout_over_fleet_streams", format(rolloutSeconds / (stream * Double(specs.count)))),
            ("artifact_bytes", "\(Int(artifact))"), ("artifact_over_fleet", format(artifact / (size * Double(specs.count)))),
            ("artifact_over_clusters", format(artifact / (size * clusters))),
            ("coord_counted_bytes", "\(Int(counted))"), ("coord_counted_over_clusters", format(counted / (size * clusters))),
            ("socket_bytes", "\(Int(socket))"), ("socket_over_clusters", format(socket / (size * clusters))),
            ("wchar_bytes", "\(Int(wchar))"), ("wchar_over_clusters", format(wchar / (size * clusters))),
            ("leader_bytes", "\(Int(fromLeaders))"), ("installs", "\(fleet.installs)"),
            ("coord_hwm_mib", mib(after.hwmKiB)), ("coord_rss_bare_mib", mib(bare.rssKiB)), ("coord_rss_idle_mib", mib(idleEnd.rssKiB)),
            ("coord_cpu_rollout_s", format(after.cpuSeconds - before.cpuSeconds)), ("coord_cpu_total_s", format(after.cpuSeconds)),
            ("idle_session_kib", format(perSessionKiB)),
            ("sim_rss_per_agent_kib", format(Double(ownIdle.rssKiB - ownBare.rssKiB) / Double(specs.count))),
            ("sim_hwm_mib", mib(own.hwmKiB)), ("sim_cpu_s", format(own.cpuSeconds)), ("agent_log_lines", "\(fleet.logLines.load(ordering: .relaxed))"),
        ]
        emitLine("result " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
    }
}
