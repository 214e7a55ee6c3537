/// The declaration of one option: `--name VALUE`, `--name=VALUE` or a boolean `--flag`.
public struct OptionSpec: Sendable, Equatable {
    /// Whether the option takes a value or is a boolean flag.
    public enum Kind: Sendable, Equatable {
        /// `--name VALUE` or `--name=VALUE`.
        case value
        /// `--flag`, true when present.
        case flag
    }

    /// Long name without dashes (`coordinator` for `--coordinator`); also the config-file key.
    public var name: String
    /// Optional one-letter alias (`c` for `-c`).
    public var short: Character?
    /// Value option or flag.
    public var kind: Kind
    /// Placeholder shown in help and usage (`ADDR`, `DURATION`).
    public var valueName: String
    /// One line for the help text.
    public var help: String
    /// Value used when no flag, environment variable or config key gives one.
    public var defaultValue: String?
    /// Environment variable that supplies the value when the flag is absent.
    public var environment: String?
    /// May be given several times; values are also split on commas (`--clusters a,b --clusters c`).
    public var repeatable: Bool
    /// The parse fails unless some source (flag, environment, config, default) gives a value.
    public var required: Bool
    /// Accepted, and listed under "Global options", by every subcommand below the declaring command.
    public var global: Bool
    /// Whether a config-file key may set it (false for `--config` itself).
    public var configurable: Bool

    /// An option that takes a value.
    public static func value(
        _ name: String, short: Character? = nil, valueName: String = "VALUE", help: String,
        default defaultValue: String? = nil, environment: String? = nil,
        repeatable: Bool = false, required: Bool = false, global: Bool = false, configurable: Bool = true
    ) -> OptionSpec {
        OptionSpec(name: name, short: short, kind: .value, valueName: valueName, help: help,
                   defaultValue: defaultValue, environment: environment, repeatable: repeatable,
                   required: required, global: global, configurable: configurable)
    }

    /// A boolean flag; the environment or config may set it with true/false, yes/no, on/off or 1/0.
    public static func flag(
        _ name: String, short: Character? = nil, help: String,
        environment: String? = nil, global: Bool = false, configurable: Bool = true
    ) -> OptionSpec {
        OptionSpec(name: name, short: short, kind: .flag, valueName: "", help: help,
                   defaultValue: nil, environment: environment, repeatable: false,
                   required: false, global: global, configurable: configurable)
    }

    /// `--name` as the user types it.
    public var flagName: String { "--" + name }

    /// The built-in `-h, --help` flag every command accepts.
    static let help = OptionSpec.flag("help", short: "h", help: "Show this help.", configurable: false)
}

/// The declaration of one positional argument.
public struct PositionalSpec: Sendable, Equatable {
    /// Name shown in usage (`FILE`) and used with `ParsedArguments.positional(_:)`.
    public var name: String
    /// One line for the help text.
    public var help: String
    /// May be left out.
    public var optional: Bool
    /// Takes every remaining word (must be the last positional).
    public var variadic: Bool

    /// A positional argument; only the last one may be variadic.
    public init(_ name: String, help: String, optional: Bool = false, variadic: Bool = false) {
        self.name = name
        self.help = help
        self.optional = optional
        self.variadic = variadic
    }

    /// How the positional appears in a usage line: `FILE`, `[FILE]`, `FILE...`, `[FILE...]`.
    var usageText: String {
        let base = variadic ? name + "..." : name
        return optional ? "[" + base + "]" : base
    }
}
