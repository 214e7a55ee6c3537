/// Timings of the pair, from `<root>/agent.conf` ("key = seconds" lines, `#` comments).
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

    public init() {}

    /// Reads the layout's config file; a missing file means the defaults.
    public static func load(_ layout: AgentLayout) throws(InstallError) -> AgentConfig {
        var config = AgentConfig()
        guard let text = try Posix.readText(layout.configFile) else { return config }
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
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
