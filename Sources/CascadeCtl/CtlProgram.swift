public import CascadeCLI

/// `cascadectl`, the operator's tool: keys, releases, rollouts and fleet views.
public enum CascadeCtl {
    /// The whole program; `main.swift` runs it.
    public static let program = Program(root, configOption: "config", defaultConfigPath: "~/.config/cascade/cascadectl.conf")

    static let root: Command = Command(
        "cascadectl", summary: "Operate a Cascade fleet: signing keys, releases, rollouts and fleet views.",
        discussion: """
        Connection settings come from flags, then environment variables, then the config file
        (key = value lines named like the options, e.g. `coordinator = 10.0.0.5:7400`).
        --timeout is the deadline of the whole command, connecting included.
        Exit status: 0 done, 1 failed, 2 the command line was wrong ('rollout watch' adds 3:
        it stopped before the rollout ended, and 4: the rollout ended partial; see
        'cascadectl rollout watch --help').
        """,
        options: globalOptions,
        subcommands: [keyCommand, releaseCommand, rolloutCommand, agentsCommand, clustersCommand, eventsCommand, completionCommand])

    static let completionCommand: Command = Command(
        "completion", summary: "Print a shell completion script (bash or zsh), generated from the command tree.",
        discussion: """
        bash:  source <(cascadectl completion bash), or save it to /usr/share/bash-completion/completions/cascadectl
        zsh:   cascadectl completion zsh > "${fpath[1]}/_cascadectl"
        """,
        positionals: [PositionalSpec("SHELL", help: "bash or zsh.")],
        run: { context in
            let name = context.arguments.optionalPositional("SHELL") ?? ""
            guard let shell = Completion.Shell(rawValue: name) else {
                throw context.usageError("unknown shell '\(name)': expected bash or zsh")
            }
            context.console.writeOut(Completion.script(for: root, shell: shell))
        })

    static let globalOptions: [OptionSpec] = [
        .value("config", valueName: "FILE", help: "Config file (default ~/.config/cascade/cascadectl.conf).",
               environment: "CASCADECTL_CONFIG", global: true, configurable: false),
        .value("coordinator", short: "c", valueName: "HOST:PORT", help: "The coordinator's operator address.",
               default: "127.0.0.1:7400", environment: "CASCADE_COORDINATOR", global: true),
        .value("ca", valueName: "FILE", help: "PEM bundle of the fleet CA.", environment: "CASCADE_CA", global: true),
        .value("cert", valueName: "FILE", help: "Operator certificate (SAN cascade://operator/<id>).",
               environment: "CASCADE_CERT", global: true),
        .value("key", valueName: "FILE", help: "Private key of the operator certificate.",
               environment: "CASCADE_KEY", global: true),
        .value("timeout", valueName: "DURATION", help: "Deadline of the whole command, connecting included (streams, once open, have none).",
               default: "30s", environment: "CASCADE_TIMEOUT", global: true),
        .flag("json", help: "Print machine-readable JSON instead of text.", global: true),
    ]
}

/// Helpers every command uses.
extension CommandContext {
    /// `--json` was asked for.
    var json: Bool {
        get throws(CLIError) { try arguments.flag("json") }
    }

    /// Prints `value` as JSON when `--json` is set, otherwise `lines`.
    func emit(_ value: @autoclosure () -> JSONValue, _ lines: @autoclosure () -> [String]) throws(CLIError) {
        if try json {
            printJSON(value())
        } else {
            // Agents fill in some of what these lines show: never their control characters.
            for line in lines() { print(HumanFormat.printable(line)) }
        }
    }
}
