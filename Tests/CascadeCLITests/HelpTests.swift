import CascadeCLI
import Testing

@Suite("Generated help")
struct HelpTests {
    @Test("The root lists global options and commands")
    func root() async {
        let result = await Sample.run(["--help"])
        #expect(result.out == """
        Usage: demo <command> [options]

        Operate a demo fleet.

        Options:
          -c, --coordinator ADDR  Coordinator address. (default: 127.0.0.1:7443; env: DEMO_COORDINATOR)
              --config PATH       Config file. (env: DEMO_CONFIG)
              --json              Print JSON.
          -h, --help              Show this help.

        Commands:
          rollout  Start and follow rollouts.
          release  Manage releases.
          fail     Always fails.

        Run 'demo <command> --help' for more about a command.

        """)
    }

    @Test("A group lists its subcommands and inherits global options")
    func group() async {
        let result = await Sample.run(["help", "rollout"])
        #expect(result.out == """
        Usage: demo rollout <command> [options]

        Start and follow rollouts.

        Options:
          -h, --help              Show this help.

        Global options:
          -c, --coordinator ADDR  Coordinator address. (default: 127.0.0.1:7443; env: DEMO_COORDINATOR)
              --config PATH       Config file. (env: DEMO_CONFIG)
              --json              Print JSON.

        Commands:
          start   Start a rollout of a release.
          status  Show a rollout's progress.

        Run 'demo rollout <command> --help' for more about a command.

        """)
    }

    @Test("A leaf shows required options in its usage, its discussion, defaults, variables and repetition")
    func leaf() async {
        let result = await Sample.run(["rollout", "start", "--help"])
        #expect(result.out == """
        Usage: demo rollout start --release VERSION [options]

        Start a rollout of a release.

        Example:
          demo rollout start --release 1.1 --clusters 10.0.1.0/24

        Options:
              --release VERSION          Release to roll out. (required)
              --clusters LIST            Clusters to include. (repeatable, comma-separated)
              --max-unavailable N        Members down at once per cluster. (default: 1)
              --failure-budget PERCENT   Failed agents before stopping. (default: 5%)
              --health-timeout DURATION  Time to become healthy. (default: 2m; env: DEMO_HEALTH_TIMEOUT)
              --rollback                 Allow a lower version.
          -h, --help                     Show this help.

        Global options:
          -c, --coordinator ADDR         Coordinator address. (default: 127.0.0.1:7443; env: DEMO_COORDINATOR)
              --config PATH              Config file. (env: DEMO_CONFIG)
              --json                     Print JSON.

        """)
    }

    @Test("Positionals appear in the usage line and an Arguments section")
    func positionals() async {
        let result = await Sample.run(["release", "push", "-h"])
        #expect(result.out == """
        Usage: demo release push [options] FILE [MORE...]

        Upload release files.

        Arguments:
          FILE       Bundle to upload.
          [MORE...]  Further bundles.

        Options:
          -h, --help              Show this help.

        Global options:
          -c, --coordinator ADDR  Coordinator address. (default: 127.0.0.1:7443; env: DEMO_COORDINATOR)
              --config PATH       Config file. (env: DEMO_CONFIG)
              --json              Print JSON.

        """)
    }

    @Test("A command with both a handler and subcommands shows the subcommand as optional")
    func optionalSubcommand() throws {
        let program = Program(Command("tool", summary: "A tool.", subcommands: [
            Command("sub", summary: "A sub.", run: { _ in }),
        ], run: { _ in }))
        guard case .help(let text) = try program.parse(["-h"], environment: CLIEnvironment(console: CapturedConsole().console))
        else { Issue.record("expected help"); return }
        #expect(text.hasPrefix("Usage: tool [<command>] [options]\n"))
    }
}
