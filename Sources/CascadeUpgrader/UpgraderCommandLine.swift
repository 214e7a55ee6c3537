import CascadeLog
import CascadeInstall
#if canImport(Glibc)
import Glibc
#endif

/// `cascade-upgrader`'s arguments. The executable only calls `main`.
public enum UpgraderCommandLine {
    public static let usage = """
        usage: cascade-upgrader --root ROOT [--standby]
               cascade-upgrader --self-test | --version | --help

        The agent's upgrade program. It starts and watches the main program (cascade-agent) of
        the agent installed in ROOT, restarts it when it dies, and switches it to a new release
        when the main program hands one over, rolling back a release that does not come up healthy.
          --standby    if another upgrader runs for ROOT, wait and take over when it exits
                       (for systemd, see scripts/systemd/cascade-agent.service.in; make install fills it in)
          --self-test  check this binary's release and print "ok VERSION"
        Logs: one line per event on standard error, as ROOT/agent.conf's "log-format" (text or
        json) and "log-level" say (CASCADE_LOG_FORMAT and CASCADE_LOG_LEVEL override them).
        Exit status: 0 stopped, 1 failure, 2 usage, 3 another upgrader already runs.
        """

    public static func main(_ arguments: [String]) -> Int32 {
        var root: String?
        var standby = false
        var index = 0
        while index < arguments.count {
            switch arguments[index] {
            case "--help", "-h":
                print(usage)
                return 0
            case "--version":
                print(ReleaseCheck.runningVersion() ?? "unknown (not running from a release)")
                return 0
            case "--self-test":
                return PairStartup.selfTest()
            case "--standby":
                standby = true
            case "--root" where index + 1 < arguments.count:
                index += 1
                root = arguments[index]
            default:
                return usageError("unknown or incomplete argument \"\(arguments[index])\"")
            }
            index += 1
        }
        guard let root else { return usageError("--root is required") }
        AgentConfig.configureLogging(AgentLayout(root: root), program: "cascade-upgrader", environment: environment())
        return UpgraderDaemon.run(root: root, standby: standby)
    }

    /// The process's environment (without Foundation).
    private static func environment() -> [String: String] {
        var result: [String: String] = [:]
        for name in [AgentConfig.logFormatVariable, AgentConfig.logLevelVariable] {
            if let value = getenv(name) { result[name] = String(cString: value) }
        }
        return result
    }

    static func usageError(_ message: String) -> Int32 {
        StandardError.write("cascade-upgrader: \(message)\n\(usage)\n")
        return 2
    }
}
