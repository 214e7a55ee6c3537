/// A program: its command tree, where its config file lives, and the `run` entry that maps
/// errors to exit codes. An executable's `main.swift` is one line: `exit(await program.main())`.
///
///     let program = Program(Command("cascadectl", summary: "Operate a Cascade fleet.",
///         options: [.value("config", valueName: "PATH", help: "Config file.", global: true, configurable: false)],
///         subcommands: [Command("rollout", summary: "Rollouts.", subcommands: [
///             Command("start", summary: "Start a rollout.",
///                     options: [.value("release", valueName: "VERSION", help: "Release.", required: true)],
///                     run: { context in context.print(try context.arguments.string("release")) }),
///         ])]), configOption: "config", defaultConfigPath: "~/.config/cascade/cascadectl.conf")
public struct Program: Sendable {
    /// The root command; its name is the program name used in messages.
    public let root: Command
    /// The long name of the option that names the config file (declare it, usually global), or nil.
    public let configOption: String?
    /// The config file read when the config option is not given; a missing default file is fine.
    public let defaultConfigPath: String?

    /// A parsed invocation, ready to run.
    public struct Invocation: Sendable {
        /// The command to run.
        public let command: Command
        /// Its words after the program name (`["rollout", "start"]`).
        public let path: [String]
        /// Its resolved arguments.
        public let arguments: ParsedArguments
    }

    /// What the command line asked for.
    public enum Parsed: Sendable {
        /// `--help`, `-h` or `help`: this text goes to standard output, exit 0.
        case help(String)
        /// A command to run.
        case invocation(Invocation)
    }

    /// A program; `defaultConfigPath` may start with `~/` (expanded with `HOME`).
    public init(_ root: Command, configOption: String? = nil, defaultConfigPath: String? = nil) {
        if let configOption {
            precondition(root.options.contains { $0.name == configOption && $0.kind == .value },
                         "the config option '--\(configOption)' must be declared on the root command")
        }
        self.root = root
        self.configOption = configOption
        self.defaultConfigPath = defaultConfigPath
    }

    /// The program name.
    public var name: String { root.name }

    /// Parses `arguments` (the words after the program name) against the tree, environment and config.
    public func parse(_ arguments: [String], environment: CLIEnvironment) throws(CLIError) -> Parsed {
        let parser = Parser(root: root)
        let chain: [Command], typed: [String: [String]], positionals: [String: [String]]
        switch try parser.parse(arguments) {
        case .help(let helpChain):
            return .help(Help.text(for: helpChain, parser: parser))
        case .run(let runChain, let options, let values):
            (chain, typed, positionals) = (runChain, options, values)
        }
        let path = chain.dropFirst().map(\.name)
        var specs: [String: OptionSpec] = [OptionSpec.help.name: OptionSpec.help]
        for command in chain {
            for spec in command.options { specs[spec.name] = spec }
        }
        do throws(CLIError) {
            let config = try loadConfig(typed: typed, variables: environment.variables, readFile: environment.readFile)
            let parsed = ParsedArguments(
                specs: specs, commandLine: typed, positionalValues: positionals,
                positionalNames: Set(chain[chain.count - 1].positionals.map(\.name)),
                environment: environment.variables, config: config)
            for spec in parser.visibleOptions(chain) where spec.required && !parsed.has(spec.name) {
                _ = try parsed.string(spec.name)  // throws the standard "missing required option" error
            }
            return .invocation(Invocation(command: chain[chain.count - 1], path: path, arguments: parsed))
        } catch {
            throw error.at(path)
        }
    }

    /// Runs with the process's arguments, environment and standard streams; returns the exit code.
    public func main() async -> Int32 {
        await run(Array(CommandLine.arguments.dropFirst()), environment: .process)
    }

    /// Parses and runs; returns the exit code (0, 1 or 2) after printing help, output or the error.
    public func run(_ arguments: [String], environment: CLIEnvironment = .process) async -> Int32 {
        // `--version` alone, as every program answers it.
        if arguments == ["--version"] || arguments == ["version"] {
            environment.console.writeOut(BuildInfo.line(program: name) + "\n")
            return ExitCode.success
        }
        let invocation: Invocation
        do {
            switch try parse(arguments, environment: environment) {
            case .help(let text):
                environment.console.writeOut(text)
                return ExitCode.success
            case .invocation(let parsed):
                invocation = parsed
            }
        } catch {
            return report(error, to: environment.console)
        }
        let context = CommandContext(arguments: invocation.arguments, console: environment.console,
                                     program: name, commandPath: invocation.path,
                                     environment: environment.variables)
        do {
            try await invocation.command.handler?(context)
            return ExitCode.success
        } catch let error as CLIError {
            return report(error.at(invocation.path), to: environment.console)
        } catch {
            return report(CLIError.failure(String(describing: error)), to: environment.console)
        }
    }

    /// Prints `error` the standard way and returns its exit code; an empty message prints nothing.
    public func report(_ error: CLIError, to console: Console) -> Int32 {
        guard !error.message.isEmpty else { return error.exitCode }
        // Messages may quote what a peer sent: no control characters reach the terminal.
        var text = "\(name): \(HumanFormat.printable(error.message))\n"
        if error.kind == .usage {
            let command = ([name] + error.commandPath).joined(separator: " ")
            text += "Try '\(command) --help'.\n"
        }
        console.writeError(text)
        return error.exitCode
    }

    /// The config file named by the config option (flag, then environment) or the default path.
    private func loadConfig(typed: [String: [String]], variables: [String: String],
                            readFile: FileReader) throws(CLIError) -> ConfigFile? {
        guard let configOption, let spec = root.options.first(where: { $0.name == configOption }) else { return nil }
        let explicit = typed[configOption]?.last ?? spec.environment.flatMap { variables[$0] }
        guard let path = explicit ?? spec.defaultValue ?? defaultConfigPath.map({ expandHome($0, variables) }) else {
            return nil
        }
        let text: String?
        do {
            text = try readFile(path)
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError.failure("cannot read config file '\(path)': \(error)")
        }
        guard let text else {
            if explicit != nil { throw CLIError.failure("config file '\(path)' does not exist") }
            return nil
        }
        let config = try ConfigFile(path: path, text: text)
        let known = root.allOptionNames.subtracting([configOption, OptionSpec.help.name])
        for key in config.keys where !known.contains(key) {
            let line = config.entries[key]?.first?.line ?? 0
            let hint = Suggestions.hint(for: key, among: known.sorted())
            throw CLIError.failure("\(path) line \(line): unknown key '\(key)'\(hint)")
        }
        return config
    }

    private func expandHome(_ path: String, _ variables: [String: String]) -> String {
        guard path.hasPrefix("~/"), let home = variables["HOME"] else { return path }
        return home + path.dropFirst()
    }
}
