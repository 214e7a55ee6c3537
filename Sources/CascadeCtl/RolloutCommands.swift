import CascadeAPI
import CascadeCLI
import CascadeCrypto
import CascadeRPC
import CascadeWire

extension CascadeCtl {
    static let idPositional = PositionalSpec("ID", help: "The rollout id.")
    static let optionalIDPositional = PositionalSpec("ID", help: "The rollout id (default: the latest rollout).", optional: true)
    static let activeIDPositional = PositionalSpec("ID", help: "The rollout id (default: the active rollout, requested, running or paused).", optional: true)
    static let reasonOption = OptionSpec.value("reason", valueName: "TEXT", help: "Why; recorded in the events table.", configurable: false)

    static let rolloutCommand = Command(
        "rollout", summary: "Start, control and follow rollouts.",
        subcommands: [
            Command(
                "start", summary: "Start rolling a pushed release out to the fleet.",
                discussion: """
                Clusters run in waves: the canary clusters first, then up to --max-parallel-clusters at a
                time; in each cluster at most --max-unavailable members upgrade at once, the leader last.

                Example: cascadectl rollout start --release 1.4.0 --max-unavailable 2 --canary-clusters 1 --failure-budget 5%
                """,
                options: [
                    .value("release", short: "r", valueName: "VERSION", help: "The release to roll out.", required: true),
                    .value("clusters", valueName: "A,B", help: "Only these clusters (prefixes); default: all.", repeatable: true),
                    .value("max-unavailable", valueName: "N", help: "Members of a cluster upgrading at once (default 1)."),
                    .value("max-parallel-clusters", valueName: "N", help: "Clusters upgrading at once (default 1)."),
                    .value("canary-clusters", valueName: "N", help: "Clusters in a first wave that must succeed first (default 0)."),
                    .value("failure-budget", valueName: "P%", help: "Share of a cluster's agents that may fail (default 0%)."),
                    .value("health-timeout", valueName: "DURATION", help: "Time a new release has to report healthy (default 120s)."),
                    .flag("rollback", help: "Record the rollout as a rollback (a lower release also needs --downgrade).", configurable: false),
                    .value("downgrade", valueName: "FILE", help: "Downgrade authorisation from 'release authorize-downgrade' (needed for a lower release).",
                           configurable: false),
                ],
                run: startRollout),
            Command("pause", summary: "Pause a rollout (default: the active one): no install starts; downloads finish and wait.",
                    options: [reasonOption], positionals: [activeIDPositional], run: { try await control($0, .pause) }),
            Command("resume", summary: "Resume a paused rollout (default: the active one).",
                    options: [reasonOption], positionals: [activeIDPositional], run: { try await control($0, .resume) }),
            Command("abort", summary: "Abort a rollout for good (default: the active one).",
                    options: [reasonOption], positionals: [activeIDPositional], run: { try await control($0, .abort) }),
            Command("status", summary: "Show a rollout: state, policy, per-cluster progress.",
                    options: [.flag("agents", help: "Add one row per agent.", configurable: false)],
                    positionals: [optionalIDPositional], run: rolloutStatus),
            Command("list", summary: "List rollouts, newest first.",
                    options: [.value("limit", valueName: "N", help: "At most this many.", default: "20")], run: listRollouts),
            Command(
                "watch", summary: "Follow a rollout live until it ends (exit 0 succeeded, 1 failed or aborted, 3 gave up, 4 partial).",
                discussion: """
                On a terminal the view is redrawn in place: a progress bar per cluster, agents per state,
                bytes moved and an ETA. Otherwise (a pipe, a log) it prints a line whenever progress changes.
                With --json it prints one status object per line.

                When the connection to the coordinator is lost (a restart, say), it says so on stderr and
                reconnects with backoff (up to 5s apart, each attempt within --timeout) until the rollout
                ends or you stop it with Ctrl-C, or for --give-up-after if given.

                Exit status: 0 the rollout succeeded; 1 it failed or was aborted (the reason is printed);
                2 the command line was wrong; 3 the watch ended before the rollout did: the coordinator
                could not be reached within --timeout at the start or for --give-up-after later, it
                refused the watch (an unknown rollout, a certificate that is not an operator's), or the
                connection settings were not usable; 4 the rollout ended partial: every cluster finished,
                but some agents failed or rolled back within the failure budget (the count is printed).
                """,
                options: [
                    .value("give-up-after", valueName: "DURATION",
                           help: "Stop reconnecting (exit 3) once the coordinator has been unreachable this long (default: never).",
                           configurable: false),
                ],
                positionals: [optionalIDPositional], run: watchRollout),
        ])

    static func rolloutID(_ context: CommandContext) throws(CLIError) -> UInt64? {
        guard let text = context.arguments.optionalPositional("ID") else { return nil }
        guard let id = UInt64(text), id > 0 else {
            throw context.usageError("invalid rollout id '\(text)': expected a positive number")
        }
        return id
    }

    /// The id given, or the newest rollout's.
    static func resolvedRolloutID(_ context: CommandContext, _ connection: Connection) async throws(CLIError) -> UInt64 {
        if let id = try rolloutID(context) { return id }
        let latest = try await connection.call(OperatorService.listRollouts, ListRolloutsRequest(limit: 1)).rollouts.first
        guard let latest else { throw CLIError.failure("there are no rollouts yet; start one with 'cascadectl rollout start'") }
        return latest.rolloutID
    }

    static func startRollout(_ context: CommandContext) async throws {
        let arguments = context.arguments
        let version = try arguments.string("release")
        do {
            _ = try ReleaseVersion(version)
        } catch {
            throw context.usageError("invalid value '\(version)' for '--release': \(error.message)")
        }
        var policy = RolloutPolicy()
        policy.maxUnavailable = UInt32(try arguments.optionalInt("max-unavailable", in: 1...100_000) ?? 0)
        policy.maxParallelClusters = UInt32(try arguments.optionalInt("max-parallel-clusters", in: 1...100_000) ?? 0)
        policy.canaryClusters = UInt32(try arguments.optionalInt("canary-clusters", in: 0...100_000) ?? 0)
        if let budget = try arguments.optionalPercentage("failure-budget") {
            guard budget == budget.rounded() else {
                throw context.usageError("invalid value '\(budget)' for '--failure-budget': expected a whole percentage such as 5%")
            }
            policy.failureBudgetPercent = UInt32(budget)
        }
        if let timeout = try arguments.optionalDuration("health-timeout") {
            let whole = timeout.components.seconds
            guard whole >= 1, whole <= 86_400 else {
                throw context.usageError("invalid value for '--health-timeout': expected 1s to 24h")
            }
            policy.healthTimeoutSeconds = UInt32(whole)
        }
        policy.rollback = try arguments.flag("rollback")
        var downgrade: SignedDowngrade?
        if let path = arguments.optionalString("downgrade") {
            do {
                downgrade = try SignedDowngrade(serializedBytes: try FileOutput.read(path))
            } catch let error as WireError {
                throw CLIError.failure("\(path) is not a downgrade authorisation: \(error.message)")
            }
            policy.rollback = true
        }
        let request = StartRolloutRequest(
            releaseVersion: version, clusters: arguments.list("clusters"), policy: policy,
            clientToken: Hex.encode(SecureRandom.bytes(16)), downgrade: downgrade)
        let connection = try Connection(context)
        let status = try await connection.call(OperatorService.startRollout, request)
        try context.emit(Render.json(status), [Render.summary(status)])
    }

    /// The rollout an operator means when naming none: the active one (at most one is).
    static func activeRolloutID(_ context: CommandContext, _ connection: Connection) async throws(CLIError) -> UInt64 {
        if let id = try rolloutID(context) { return id }
        let recent = try await connection.call(OperatorService.listRollouts, ListRolloutsRequest(limit: 50)).rollouts
        guard let active = recent.first(where: { !$0.state.isTerminal }) else {
            let latest = recent.first.map { "; the latest, \($0.rolloutID), is \($0.state)" } ?? ""
            throw CLIError.failure("no rollout is active\(latest); name one by its ID")
        }
        return active.rolloutID
    }

    static func control(_ context: CommandContext, _ action: RolloutAction) async throws {
        let connection = try Connection(context)
        let id = try await activeRolloutID(context, connection)
        let request = RolloutControlRequest(rolloutID: id, reason: context.arguments.optionalString("reason") ?? "")
        let method = switch action {
        case .pause: OperatorService.pauseRollout
        case .resume: OperatorService.resumeRollout
        default: OperatorService.abortRollout
        }
        let status = try await connection.call(method, request)
        try context.emit(Render.json(status), [Render.summary(status)])
    }

    static func rolloutStatus(_ context: CommandContext) async throws {
        let connection = try Connection(context)
        let id = try await resolvedRolloutID(context, connection)
        let status = try await connection.call(
            OperatorService.getRollout, RolloutQuery(rolloutID: id, includeAgents: try context.arguments.flag("agents")))
        try context.emit(Render.json(status), Render.statusLines(status))
    }

    static func listRollouts(_ context: CommandContext) async throws {
        let limit = try context.arguments.int("limit", in: 1...1000)
        let connection = try Connection(context)
        let rollouts = try await connection.call(OperatorService.listRollouts, ListRolloutsRequest(limit: UInt32(limit))).rollouts
        try context.emit(.array(rollouts.map(Render.json)), Render.rolloutTable(rollouts))
    }

    /// `rollout watch`'s exit status when it stops before the rollout ends, so that 1 always
    /// means the rollout itself failed or was aborted.
    static let watchGaveUpExit: Int32 = 3
    /// `rollout watch`'s exit status for a rollout that ended partial: not a failure (the
    /// budget allowed it), but a script must not read it as every agent upgraded.
    static let watchPartialExit: Int32 = 4

    static func watchRollout(_ context: CommandContext) async throws {
        let giveUpAfter = try context.arguments.optionalDuration("give-up-after")
        if let giveUpAfter, giveUpAfter <= .zero {
            throw context.usageError("invalid value for '--give-up-after': expected a duration above zero such as 10m")
        }
        let final: RolloutStatus
        do {
            final = try await followToEnd(context, giveUpAfter: giveUpAfter)
        } catch let error as CLIError where error.kind == .failure {
            throw CLIError.failure(error.message, exitCode: watchGaveUpExit)
        }
        switch final.state {
        case .succeeded:
            return
        case .partial:
            throw CLIError.failure("rollout \(final.rolloutID) ended partial: \(final.message)", exitCode: watchPartialExit)
        case .aborted:
            throw CLIError.failure("rollout \(final.rolloutID) was aborted" + (final.message.isEmpty ? "" : ": \(final.message)"))
        default:
            throw CLIError.failure("rollout \(final.rolloutID) \(final.state)" + (final.message.isEmpty ? "" : ": \(final.message)"))
        }
    }

    /// Shows the rollout's progress until it reaches a final state, reconnecting whenever the
    /// stream breaks, and returns that state.
    private static func followToEnd(_ context: CommandContext, giveUpAfter: Duration?) async throws -> RolloutStatus {
        let connection = try Connection(context)
        let watcher = RolloutWatcher(context: context, json: try context.json)
        var id = try await resolvedRolloutID(context, connection)
        var link = try await connection.connect()
        while true {
            var lost: (any Error)?
            do {
                try await link.serverStreaming(OperatorService.watchRollout, RolloutQuery(rolloutID: id, minIntervalMs: 500)) { stream in
                    for try await status in stream { watcher.show(status) }
                }
            } catch {
                guard isConnectionLoss(error) else { throw connection.explain(error) }
                lost = error
            }
            if let last = watcher.last {
                if last.state.isTerminal { return watcher.finish(last) }
                id = last.rolloutID
            } else if lost == nil {
                throw CLIError.failure("the coordinator ended the watch without sending a status")
            }
            let reason = lost.map { connection.explain($0).message } ?? "the coordinator ended the stream"
            context.printError("\(context.program): lost the watch of rollout \(id): \(reason); reconnecting (Ctrl-C to stop)")
            link = try await reconnect(context, connection, rollout: id, giveUpAfter: giveUpAfter)
            context.printError("\(context.program): reconnected to the coordinator at \(connection.addressText); watching rollout \(id) again")
        }
    }

    /// Tries again and again, with backoff, until a connection is made or `giveUpAfter` passes.
    private static func reconnect(
        _ context: CommandContext, _ connection: Connection, rollout id: UInt64, giveUpAfter: Duration?
    ) async throws -> RPCConnection {
        let since = ContinuousClock.now
        let giveUpAt = giveUpAfter.map { since + $0 }
        var attempt = 0
        while true {
            attempt += 1
            // 0.25 s, 0.5, 1, 2, 4, then every 5 s: quick after a restart, quiet during an outage.
            var wait = min(.milliseconds(250) * (1 << min(attempt - 1, 5)), .seconds(5))
            if let giveUpAt { wait = min(wait, max(giveUpAt - .now, .zero)) }
            try await Task.sleep(for: wait)  // backoff between attempts, not a wait for an outcome
            do {
                return try await connection.reconnect(giveUpAt: giveUpAt)
            } catch {
                if let giveUpAt, ContinuousClock.now >= giveUpAt, let giveUpAfter {
                    throw CLIError.failure(
                        "gave up watching rollout \(id): the coordinator at \(connection.addressText) has been unreachable for "
                            + "\(HumanFormat.duration(giveUpAfter)) (--give-up-after); the rollout may still be running")
                }
                context.printError("\(context.program): still reconnecting (attempt \(attempt)): \(connection.explain(error).message)")
            }
        }
    }

    /// Whether a watch stream failed because the connection did (the coordinator restarting,
    /// the network), as opposed to the coordinator refusing the watch itself.
    static func isConnectionLoss(_ error: any Error) -> Bool {
        guard let error = error as? RPCError else { return true }
        switch error.code {
        case .invalidArgument, .notFound, .alreadyExists, .permissionDenied, .failedPrecondition, .outOfRange,
             .unimplemented, .dataLoss, .unauthenticated:
            return false
        default:
            return true
        }
    }
}

/// The state of one `rollout watch`: the renderer, the ETA estimates, the last status.
final class RolloutWatcher {
    private let context: CommandContext
    private let json: Bool
    private var renderer: LiveRenderer
    private var tracker = ETATracker()
    private let start = ContinuousClock.now
    private(set) var last: RolloutStatus?

    init(context: CommandContext, json: Bool) {
        self.context = context
        self.json = json
        renderer = LiveRenderer(console: context.console)
    }

    func show(_ status: RolloutStatus) {
        last = status
        if json {
            context.printJSON(Render.json(status), pretty: false)
            return
        }
        renderer.update(snapshot(status))
    }

    /// Draws the final state (plain mode: every line that still differs) and returns it.
    func finish(_ status: RolloutStatus) -> RolloutStatus {
        if !json { renderer.finish(snapshot(status)) }
        return status
    }

    private func snapshot(_ status: RolloutStatus) -> LiveSnapshot {
        let now = ContinuousClock.now - start
        var etas: [String: Duration] = [:]
        for cluster in status.clusterProgress {
            etas[cluster.clusterID] = tracker.observe(
                cluster.clusterID, done: Int64(Render.finished(cluster.counts)), total: Int64(cluster.counts.total), at: now)
        }
        etas[""] = tracker.observe("", done: Int64(Render.finished(status.totals)), total: Int64(status.totals.total), at: now)
        return Render.snapshot(status, etas: etas)
    }
}
