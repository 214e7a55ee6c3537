/// Generates the help page of a command: usage, summary, discussion, options, subcommands.
enum Help {
    static func text(for chain: [Command], parser: Parser) -> String {
        let command = chain[chain.count - 1]
        let path = chain.map(\.name).joined(separator: " ")
        var lines = ["Usage: " + usage(command, path: path, options: parser.visibleOptions(chain)), ""]
        lines.append(command.summary)
        if !command.discussion.isEmpty {
            lines.append("")
            lines.append(contentsOf: command.discussion.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        }

        if !command.positionals.isEmpty {
            lines += ["", "Arguments:"]
            lines += aligned(command.positionals.map { ($0.usageText, $0.help) })
        }

        let own = Set(command.options.map(\.name))
        let inherited = parser.visibleOptions(chain).filter { !own.contains($0.name) && $0.name != OptionSpec.help.name }
        // Both option sections share one column width so they read as one list.
        let ownRows = (command.options + [OptionSpec.help]).map { (label($0), describe($0)) }
        let inheritedRows = inherited.map { (label($0), describe($0)) }
        let width = (ownRows + inheritedRows).map(\.0.count).max() ?? 0
        lines += ["", "Options:"]
        lines += aligned(ownRows, width: width)
        if !inheritedRows.isEmpty {
            lines += ["", "Global options:"]
            lines += aligned(inheritedRows, width: width)
        }

        if !command.subcommands.isEmpty {
            lines += ["", "Commands:"]
            lines += aligned(command.subcommands.map { ($0.name, $0.summary) })
            lines += ["", "Run '\(path) <command> --help' for more about a command."]
        }
        return lines.map { $0.trimmingTrailingSpaces }.joined(separator: "\n") + "\n"
    }

    /// `cascadectl release create --key PATH [options] FILE`.
    private static func usage(_ command: Command, path: String, options: [OptionSpec]) -> String {
        var parts = [path]
        if !command.subcommands.isEmpty {
            parts.append(command.handler == nil ? "<command>" : "[<command>]")
        }
        for spec in command.options where spec.required && spec.defaultValue == nil {
            parts.append(spec.flagName + " " + spec.valueName)
        }
        parts.append("[options]")
        parts += command.positionals.map(\.usageText)
        return parts.joined(separator: " ")
    }

    /// `-c, --coordinator ADDR` or `    --json` (aligned with the short-alias column).
    private static func label(_ spec: OptionSpec) -> String {
        let short = spec.short.map { "-\($0), " } ?? "    "
        let value = spec.kind == .value ? " " + spec.valueName : ""
        return short + spec.flagName + value
    }

    /// The help line plus what the reader needs to know about defaults, environment and repetition.
    private static func describe(_ spec: OptionSpec) -> String {
        var notes: [String] = []
        if spec.required && spec.defaultValue == nil { notes.append("required") }
        if let value = spec.defaultValue { notes.append("default: \(value)") }
        if let variable = spec.environment { notes.append("env: \(variable)") }
        if spec.repeatable { notes.append("repeatable, comma-separated") }
        return notes.isEmpty ? spec.help : spec.help + " (" + notes.joined(separator: "; ") + ")"
    }

    /// Two columns, the second starting two spaces after the widest first cell.
    private static func aligned(_ rows: [(String, String)], width: Int? = nil) -> [String] {
        let width = width ?? rows.map(\.0.count).max() ?? 0
        return rows.map { "  " + $0.0.padding(to: width) + "  " + $0.1 }
    }
}

extension String {
    /// The string padded with spaces on the right to `width` characters.
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    /// The string padded with spaces on the left to `width` characters.
    func leftPadding(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }

    /// The string without trailing spaces.
    var trimmingTrailingSpaces: String {
        guard let last = lastIndex(where: { $0 != " " }) else { return "" }
        return String(self[...last])
    }
}
