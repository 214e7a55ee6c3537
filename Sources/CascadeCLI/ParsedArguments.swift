/// The options and positionals of one invocation, with typed accessors.
///
/// Values resolve flag > environment variable > config file > default. Asking for an option the
/// command never declared is a programming error and traps, so typos surface in the first test.
public struct ParsedArguments: Sendable {
    /// Options visible to the command (its own, its ancestors', `help`), by long name.
    let specs: [String: OptionSpec]
    /// Values typed on the command line, in order (a flag stores "true").
    let commandLine: [String: [String]]
    /// Positional values by positional name (variadic ones hold several).
    let positionalValues: [String: [String]]
    /// Declared positional names, to catch accessor typos.
    let positionalNames: Set<String>
    /// Environment variables.
    let environment: [String: String]
    /// The loaded config file, if any.
    let config: ConfigFile?

    /// The raw values of an option and where they came from; nil if no source has one.
    public func rawValues(_ name: String) -> (values: [String], source: ValueSource)? {
        let spec = self.spec(name)
        if let typed = commandLine[name], !typed.isEmpty {
            return (spec.repeatable ? typed.flatMap(ValueParsing.list) : typed, .commandLine)
        }
        if let variable = spec.environment, let value = environment[variable] {
            return (spec.repeatable ? ValueParsing.list(value) : [value], .environment(variable))
        }
        if spec.configurable, let config, let entries = config.entries[name], let last = entries.last {
            let values = spec.repeatable ? entries.flatMap { ValueParsing.list($0.value) } : [last.value]
            return (values, .config(path: config.path, line: last.line))
        }
        if let value = spec.defaultValue {
            return (spec.repeatable ? ValueParsing.list(value) : [value], .defaultValue)
        }
        return nil
    }

    /// Where the option's value comes from, or nil if it has none.
    public func source(of name: String) -> ValueSource? {
        rawValues(name)?.source
    }

    /// Whether any source gives the option a value.
    public func has(_ name: String) -> Bool {
        rawValues(name) != nil
    }

    /// The option's text, or nil if no source gives one.
    public func optionalString(_ name: String) -> String? {
        rawValues(name)?.values.last
    }

    /// The option's text; a usage error if no source gives one.
    public func string(_ name: String) throws(CLIError) -> String {
        guard let value = optionalString(name) else { throw missing(name) }
        return value
    }

    /// A repeatable option's items (comma-split, across occurrences); empty if none.
    public func list(_ name: String) -> [String] {
        rawValues(name)?.values ?? []
    }

    /// An integer option, nil if absent; a usage error if it is not an integer within `range`.
    public func optionalInt(_ name: String, in range: ClosedRange<Int>? = nil) throws(CLIError) -> Int? {
        let expected = range.map { "an integer from \($0.lowerBound) to \($0.upperBound)" } ?? "an integer"
        return try typed(name, expected: expected) { text in
            guard let value = ValueParsing.integer(text), range?.contains(value) ?? true else { return nil }
            return value
        }
    }

    /// An integer option; a usage error if absent, not an integer, or outside `range`.
    public func int(_ name: String, in range: ClosedRange<Int>? = nil) throws(CLIError) -> Int {
        guard let value = try optionalInt(name, in: range) else { throw missing(name) }
        return value
    }

    /// A duration option (`30s`, `5m`, `1h`, `500ms`, plain seconds), nil if absent.
    public func optionalDuration(_ name: String) throws(CLIError) -> Duration? {
        try typed(name, expected: "a duration such as 30s, 5m, 1h or 500ms", parse: ValueParsing.duration)
    }

    /// A duration option; a usage error if absent or malformed.
    public func duration(_ name: String) throws(CLIError) -> Duration {
        guard let value = try optionalDuration(name) else { throw missing(name) }
        return value
    }

    /// A percentage option (`5%` or `5`, 0 to 100), nil if absent.
    public func optionalPercentage(_ name: String) throws(CLIError) -> Double? {
        try typed(name, expected: "a percentage from 0 to 100 such as 5%", parse: ValueParsing.percentage)
    }

    /// A percentage option; a usage error if absent or malformed.
    public func percentage(_ name: String) throws(CLIError) -> Double {
        guard let value = try optionalPercentage(name) else { throw missing(name) }
        return value
    }

    /// A boolean flag: true if typed; otherwise the environment or config value; false if none.
    public func flag(_ name: String) throws(CLIError) -> Bool {
        try typed(name, expected: "true or false", parse: ValueParsing.boolean) ?? false
    }

    /// Any typed option: `parse` returns nil to reject the text, and `expected` completes
    /// "invalid value 'x' for '--name': expected ...".
    public func typed<T>(_ name: String, expected: String, parse: (String) -> T?) throws(CLIError) -> T? {
        guard let (values, source) = rawValues(name), let text = values.last else { return nil }
        guard let value = parse(text) else {
            throw CLIError.usage("invalid value '\(text)' for '--\(name)'\(source.suffix): expected \(expected)")
        }
        return value
    }

    /// A required positional's value (the parser guarantees it is there).
    public func positional(_ name: String) -> String {
        guard let value = optionalPositional(name) else {
            preconditionFailure("positional '\(name)' is optional or variadic; use optionalPositional or positionals")
        }
        return value
    }

    /// An optional positional's value, nil if not given.
    public func optionalPositional(_ name: String) -> String? {
        positionals(name).first
    }

    /// A variadic positional's values, in order.
    public func positionals(_ name: String) -> [String] {
        precondition(positionalNames.contains(name), "no positional named '\(name)' is declared")
        return positionalValues[name] ?? []
    }

    private func spec(_ name: String) -> OptionSpec {
        guard let spec = specs[name] else { preconditionFailure("no option '--\(name)' is declared for this command") }
        return spec
    }

    private func missing(_ name: String) -> CLIError {
        let spec = self.spec(name)
        let hint = spec.environment.map { " (or set \($0))" } ?? ""
        return CLIError.usage("missing required option '--\(name)'\(hint)")
    }
}
