/// One command of a program's command tree: a leaf that runs, or a group of subcommands (or both).
public struct Command: Sendable {
    /// What a command does when it runs; throw `CLIError` (or any error, reported as a failure).
    public typealias Handler = @Sendable (CommandContext) async throws -> Void

    /// The word that selects it (`start` in `cascadectl rollout start`); the program name for the root.
    public var name: String
    /// One line, shown in the parent's command list and at the top of its help.
    public var summary: String
    /// Longer free text for the help page (examples, notes); may be empty.
    public var discussion: String
    /// Options this command accepts (plus global ones from its ancestors, plus `--help`).
    public var options: [OptionSpec]
    /// Positional arguments, in order.
    public var positionals: [PositionalSpec]
    /// Child commands selected by the next word.
    public var subcommands: [Command]
    /// The code that runs; nil for a pure group, which then needs a subcommand.
    public var handler: Handler?

    /// Declares a command; `run` is optional for a group with subcommands.
    public init(
        _ name: String, summary: String, discussion: String = "",
        options: [OptionSpec] = [], positionals: [PositionalSpec] = [],
        subcommands: [Command] = [], run handler: Handler? = nil
    ) {
        precondition(positionals.dropLast().allSatisfy { !$0.variadic }, "only the last positional may be variadic")
        precondition(handler != nil || !subcommands.isEmpty, "command '\(name)' has neither a handler nor subcommands")
        self.name = name
        self.summary = summary
        self.discussion = discussion
        self.options = options
        self.positionals = positionals
        self.subcommands = subcommands
        self.handler = handler
    }

    /// The direct subcommand called `name`, if any.
    public func subcommand(named name: String) -> Command? {
        subcommands.first { $0.name == name }
    }

    /// Every option anywhere in this tree, for checking config-file keys.
    var allOptionNames: Set<String> {
        var names = Set(options.map(\.name))
        for child in subcommands { names.formUnion(child.allOptionNames) }
        return names
    }
}

/// What a handler gets: the parsed arguments, where to write, and which command ran.
public struct CommandContext: Sendable {
    /// Options and positionals, resolved flag > environment > config > default.
    public let arguments: ParsedArguments
    /// Standard output and error (captured in tests).
    public let console: Console
    /// The program name (`cascadectl`).
    public let program: String
    /// The words that selected the command, after the program name (`["rollout", "start"]`).
    public let commandPath: [String]
    /// The environment variables the program was given (injected in tests).
    public let environment: [String: String]

    /// Writes `text` and a newline to standard output.
    public func print(_ text: String) {
        console.writeOut(text + "\n")
    }

    /// Writes `text` and a newline to standard error.
    public func printError(_ text: String) {
        console.writeError(text + "\n")
    }

    /// Writes a JSON value to standard output (pretty, with a trailing newline).
    public func printJSON(_ value: JSONValue, pretty: Bool = true) {
        console.writeOut(value.encoded(pretty: pretty) + "\n")
    }

    /// A usage error pointing its hint at this command.
    public func usageError(_ message: String) -> CLIError {
        CLIError.usage(message).at(commandPath)
    }
}
