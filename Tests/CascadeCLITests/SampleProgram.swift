import CascadeCLI
import Synchronization

/// A small cascadectl-like tree shared by the tests; handlers record what they saw.
enum Sample {
    static func program(record: Recorder = Recorder()) -> Program {
        let start = Command(
            "start", summary: "Start a rollout of a release.",
            discussion: "Example:\n  demo rollout start --release 1.1 --clusters 10.0.1.0/24",
            options: [
                .value("release", valueName: "VERSION", help: "Release to roll out.", required: true),
                .value("clusters", valueName: "LIST", help: "Clusters to include.", repeatable: true),
                .value("max-unavailable", valueName: "N", help: "Members down at once per cluster.", default: "1"),
                .value("failure-budget", valueName: "PERCENT", help: "Failed agents before stopping.", default: "5%"),
                .value("health-timeout", valueName: "DURATION", help: "Time to become healthy.", default: "2m",
                       environment: "DEMO_HEALTH_TIMEOUT"),
                .flag("rollback", help: "Allow a lower version."),
            ],
            run: { context in record.record(context) })
        let status = Command(
            "status", summary: "Show a rollout's progress.",
            positionals: [PositionalSpec("ROLLOUT", help: "Rollout id.", optional: true)],
            run: { context in record.record(context) })
        let push = Command(
            "push", summary: "Upload release files.",
            positionals: [PositionalSpec("FILE", help: "Bundle to upload."),
                          PositionalSpec("MORE", help: "Further bundles.", optional: true, variadic: true)],
            run: { context in record.record(context) })
        let fail = Command("fail", summary: "Always fails.", run: { _ in throw CLIError.failure("coordinator unreachable") })
        let root = Command(
            "demo", summary: "Operate a demo fleet.",
            options: [
                .value("coordinator", short: "c", valueName: "ADDR", help: "Coordinator address.",
                       default: "127.0.0.1:7443", environment: "DEMO_COORDINATOR", global: true),
                .value("config", valueName: "PATH", help: "Config file.", environment: "DEMO_CONFIG",
                       global: true, configurable: false),
                .flag("json", help: "Print JSON.", global: true),
            ],
            subcommands: [
                Command("rollout", summary: "Start and follow rollouts.", subcommands: [start, status]),
                Command("release", summary: "Manage releases.", subcommands: [push]),
                fail,
            ])
        return Program(root, configOption: "config", defaultConfigPath: "~/.demo.conf")
    }

    /// Runs the sample program and returns its exit code, stdout and stderr.
    static func run(_ words: [String], variables: [String: String] = [:], files: [String: String] = [:],
                    record: Recorder = Recorder()) async -> (code: Int32, out: String, err: String) {
        let captured = CapturedConsole()
        let environment = CLIEnvironment(variables: variables, console: captured.console, readFile: { files[$0] })
        let code = await program(record: record).run(words, environment: environment)
        return (code, captured.output, captured.errorOutput)
    }

    /// Parses with the sample program; the arguments of the command that would run.
    static func parse(_ words: [String], variables: [String: String] = [:],
                      files: [String: String] = [:]) throws(CLIError) -> ParsedArguments {
        let environment = CLIEnvironment(variables: variables, console: CapturedConsole().console,
                                         readFile: { files[$0] })
        switch try program().parse(words, environment: environment) {
        case .help: preconditionFailure("expected an invocation, got help")
        case .invocation(let invocation): return invocation.arguments
        }
    }
}

/// Keeps the contexts handlers were called with.
final class Recorder: Sendable {
    private let contexts = Mutex<[CommandContext]>([])
    func record(_ context: CommandContext) { contexts.withLock { $0.append(context) } }
    var last: CommandContext? { contexts.withLock { $0.last } }
}
