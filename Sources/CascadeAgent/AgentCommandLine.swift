import CascadeLog
import CascadeInstall
import CascadeUpgrader
import Foundation

/// `cascade-agent`'s commands. The executable only calls `main`; the fleet runtime passes
/// its hooks here when it arrives.
public enum AgentCommandLine {
    public static let usage = """
        usage: cascade-agent install --root ROOT BUNDLE
               cascade-agent upgrade --root ROOT [--retry] [--timeout SECONDS] BUNDLE
               cascade-agent status  --root ROOT
               cascade-agent run     --root ROOT
               cascade-agent stop    --root ROOT
               cascade-agent gc      --root ROOT
               cascade-agent --self-test | --version | --help

        The Cascade agent's main program. A BUNDLE is a tar archive (optionally gzip-compressed)
        holding bin/cascade-agent, bin/cascade-upgrader and VERSION.
          install   lay out ROOT and install BUNDLE as the first release of both programs
          upgrade   hand BUNDLE to the upgrader: it switches the main program, waits for it to
                    report healthy (or rolls it back), then the new main program upgrades the
                    upgrader; prints both outcomes (--retry: try a version that failed before)
          status    both programs' releases, processes, switches in progress and failures, and
                    the fleet link (joined, retrying: why, or not configured); exit 1 when
                    fleet.conf exists but the agent is not in the fleet
          run       run the main program (it starts and watches the upgrader); with ROOT/fleet.conf it
                    joins the fleet, and "metrics-listen = PORT" there serves GET /metrics
                    (Prometheus text format) on 127.0.0.1:PORT (HOST:PORT for another address)
          stop      stop both programs so that neither restarts the other
          gc        remove releases other than current/previous and downloads not in flight;
                    prints each path freed and its bytes
        Logs: one line per event on standard error (time in UTC, level, program[pid], component,
        message, key=value fields); ROOT/agent.conf sets "log-format = text|json" and
        "log-level = debug|info|warning|error" for both programs (CASCADE_LOG_FORMAT and
        CASCADE_LOG_LEVEL override them). In fleet.conf, "coordinator" may be HOST:PORT with a
        host name (resolved each time the file is read).
        Exit status: 0 success, 1 failure, 2 usage, 3 another main program already runs.
        """

    public static func main(_ arguments: [String], hooks: AgentHooks? = nil) -> Int32 {
        guard let command = arguments.first else { return usageError("a command is required") }
        switch command {
        case "--help", "-h", "help":
            print(usage)
            return 0
        case "--version":
            print(ReleaseCheck.runningVersion() ?? "unknown (not running from a release)")
            return 0
        case "--self-test":
            return PairStartup.selfTest()
        case "install", "upgrade", "status", "run", "stop", "gc":
            // `cascade-agent status --help` is a question, not a mistake.
            if arguments.contains("--help") || arguments.contains("-h") {
                print(usage)
                return 0
            }
        default:
            return usageError("unknown command \"\(command)\"")
        }
        let options: Options
        do throws(UsageError) {
            options = try Options.parse(command, Array(arguments.dropFirst()))
        } catch {
            return usageError(error.message)
        }
        // Both programs of the pair log as agent.conf (and the environment) say.
        AgentConfig.configureLogging(
            AgentLayout(root: options.root), program: "cascade-agent", environment: ProcessInfo.processInfo.environment)
        do throws(InstallError) {
            switch command {
            case "install":
                let version = try AgentInstaller.install(root: options.root, bundle: options.bundle!)
                print("""
                    installed \(version) in \(options.root)
                    start the pair with `systemctl start cascade-agent` (scripts/systemd) \
                    or `\(AgentLayout(root: options.root).currentBinary(.upgrader)) --root \(options.root)`
                    """)
                return 0
            case "upgrade":
                return try upgrade(options)
            case "status":
                let layout = AgentLayout(root: options.root)
                guard layout.isInstalled else { throw InstallError(.layout, "\(layout.root) has no installed agent") }
                let statuses = AgentStatus.read(layout)
                let fleet = FleetLinkView.read(layout, mainPid: statuses.first { $0.program == .main }?.running?.pid)
                print(AgentStatus.render(statuses, root: layout.root) + "\n" + fleet.line)
                guard !fleet.isFailure else {
                    StandardError.write("cascade-agent status: the agent is configured for a fleet (\(layout.fleetConfigFile)) but is not in it\n")
                    return 1
                }
                return 0
            case "gc":
                return try collect(AgentLayout(root: options.root))
            case "run":
                return AgentDaemon.run(root: options.root, hooks: hooks ?? FleetAgent.hooks(root: options.root))
            default:
                let config = try AgentConfig.load(AgentLayout(root: options.root))
                try AgentInstaller.stop(root: options.root, grace: config.stopGrace)
                print("stopped the agent in \(options.root)")
                return 0
            }
        } catch {
            StandardError.write("cascade-agent \(command): \(error.message)\n")
            return 1
        }
    }

    private static func upgrade(_ options: Options) throws(InstallError) -> Int32 {
        let layout = AgentLayout(root: options.root)
        let config = try AgentConfig.load(layout)
        let handoff = ReleaseHandoff(layout: layout)
        let since = Date().timeIntervalSince1970
        let version = try handoff.deliver(bundle: options.bundle!, retry: options.retry)
        print("handed \(version) to the upgrader")
        let timeout = options.timeout ?? (config.healthDeadline * 2 + config.stopGrace * 4 + .seconds(60))
        let results = try handoff.waitForOutcome(version: version, since: since, timeout: timeout)
        for result in results {
            print("\(result.program): \(result.version) \(result.outcome.rawValue): \(result.reason)")
        }
        return results.allSatisfy { $0.outcome == .upgraded } && results.count == 2 ? 0 : 1
    }

    private static func collect(_ layout: AgentLayout) throws(InstallError) -> Int32 {
        guard layout.isInstalled else { throw InstallError(.layout, "\(layout.root) has no installed agent") }
        let report = try DiskHygiene(layout: layout).collect()
        for freed in report.freed { print("freed \(freed.path) (\(freed.bytes) bytes)") }
        for kept in report.kept { print(kept) }
        print(report.freed.isEmpty ? "nothing to free in \(layout.root)" : "freed \(report.freedBytes) bytes in \(report.freed.count) paths")
        return 0
    }

    struct UsageError: Error {
        let message: String
    }

    struct Options {
        var root = ""
        var bundle: String?
        var retry = false
        var timeout: Duration?

        static func parse(_ command: String, _ arguments: [String]) throws(UsageError) -> Options {
            var options = Options()
            var rootSeen = false
            var index = 0
            func value() throws(UsageError) -> String {
                index += 1
                guard index < arguments.count else { throw UsageError(message: "\(arguments[index - 1]) needs a value") }
                return arguments[index]
            }
            while index < arguments.count {
                let argument = arguments[index]
                switch argument {
                case "--root":
                    options.root = try value()
                    rootSeen = true
                case "--retry" where command == "upgrade":
                    options.retry = true
                case "--timeout" where command == "upgrade":
                    guard let seconds = Double(try value()), seconds > 0 else {
                        throw UsageError(message: "--timeout needs a number of seconds")
                    }
                    options.timeout = .milliseconds(Int64(seconds * 1000))
                default:
                    guard !argument.hasPrefix("-"), options.bundle == nil, ["install", "upgrade"].contains(command) else {
                        throw UsageError(message: "unexpected argument \"\(argument)\" for \(command)")
                    }
                    options.bundle = argument
                }
                index += 1
            }
            guard rootSeen, !options.root.isEmpty else { throw UsageError(message: "\(command) needs --root ROOT") }
            if ["install", "upgrade"].contains(command) && options.bundle == nil {
                throw UsageError(message: "\(command) needs a BUNDLE")
            }
            return options
        }
    }

    private static func usageError(_ message: String) -> Int32 {
        StandardError.write("cascade-agent: \(message)\n\(usage)\n")
        return 2
    }
}
