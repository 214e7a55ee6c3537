public import CascadeLog

/// Timings of the pair, from `<root>/agent.conf` ("key = seconds" lines, `#` comments), and
/// how both programs log (`log-format = text|json`, `log-level = debug|info|warning|error`).
/// Defaults suit a real server; tests write short ones.
public struct AgentConfig: Sendable, Equatable {
    /// How long a freshly started program has to report healthy before it is rolled back.
    public var healthDeadline: Duration = .seconds(120)
    /// SIGTERM to SIGKILL when stopping a program.
    public var stopGrace: Duration = .seconds(10)
    /// First delay before restarting a program that died; doubles per recent crash.
    public var restartBackoff: Duration = .seconds(1)
    public var restartBackoffMax: Duration = .seconds(30)
    /// More restarts than this within `crashLoopWindow` is a crash loop (reported).
    public var crashLoopRestarts: Int = 5
    public var crashLoopWindow: Duration = .seconds(60)
    /// How often each program checks on the other.
    public var pollInterval: Duration = .milliseconds(200)
    /// First delay before the main program tries again to join the fleet (fleet.conf is read
    /// again each time); doubles per failure up to `fleetRetryMax`.
    public var fleetRetry: Duration = .seconds(1)
    public var fleetRetryMax: Duration = .seconds(30)
    /// How both programs of the pair log; `CASCADE_LOG_FORMAT` and `CASCADE_LOG_LEVEL` in
    /// their environment win over these.
    public var logFormat: LogFormat = .text
    public var logLevel: LogLevel = .info

    public init() {}

    /// The environment variables that override agent.conf's `log-format` and `log-level`.
    public static let logFormatVariable = "CASCADE_LOG_FORMAT"
    public static let logLevelVariable = "CASCADE_LOG_LEVEL"

    /// Sets the process's log output from agent.conf and the environment. A file that does not
    /// load leaves the defaults (the program reports the file's error itself once it logs).
    public static func configureLogging(_ layout: AgentLayout, program: String, environment: [String: String]) {
        let config = (try? load(layout)) ?? AgentConfig()
        let format = environment[logFormatVariable].flatMap { LogFormat(name: $0) } ?? config.logFormat
        let level = environment[logLevelVariable].flatMap { LogLevel(name: $0) } ?? config.logLevel
        Logging.configure(program: program, level: level, format: format)
    }

    /// Reads the layout's config file; a missing file means the defaults.
    public static func load(_ layout: AgentLayout) throws(InstallError) -> AgentConfig {
        var config = AgentConfig()
        guard let text = try Posix.readText(layout.configFile) else { return config }
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, parts[0] == "log-format" || parts[0] == "log-level" {
                if parts[0] == "log-format" {
                    guard let format = LogFormat(name: parts[1]) else {
                        throw InstallError(.layout, "\(layout.configFile) line \(number + 1): log-format must be \(LogFormat.choices), not \"\(parts[1])\"")
                    }
                    config.logFormat = format
                } else {
                    guard let level = LogLevel(name: parts[1]) else {
                        throw InstallError(.layout, "\(layout.configFile) line \(number + 1): log-level must be \(LogLevel.choices), not \"\(parts[1])\"")
                    }
                    config.logLevel = level
                }
                continue
            }
            guard parts.count == 2, let value = Double(parts[1]), value >= 0 else {
                throw InstallError(.layout, "\(layout.configFile) line \(number + 1) is not \"key = number\"")
            }
            let duration = Duration.milliseconds(Int64(value * 1000))
            switch parts[0] {
            case "health-deadline": config.healthDeadline = duration
            case "stop-grace": config.stopGrace = duration
            case "restart-backoff": config.restartBackoff = duration
            case "restart-backoff-max": config.restartBackoffMax = duration
            case "crash-loop-restarts": config.crashLoopRestarts = Int(value)
            case "crash-loop-window": config.crashLoopWindow = duration
            case "poll-interval": config.pollInterval = duration
            case "fleet-retry": config.fleetRetry = duration
            case "fleet-retry-max": config.fleetRetryMax = duration
            default:
                throw InstallError(.layout, "\(layout.configFile) line \(number + 1) has the unknown key \"\(parts[0])\"")
            }
        }
        return config
    }
}
