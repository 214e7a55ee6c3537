/// What the command line asked for, before environment and config are consulted.
enum CommandLineParse {
    /// Show help for the command at the end of this chain.
    case help([Command])
    /// Run the last command of the chain with these typed values.
    case run(chain: [Command], options: [String: [String]], positionals: [String: [String]])
}

/// Splits words into a command chain, option values and positionals; strict about everything.
struct Parser {
    let root: Command

    func parse(_ words: [String]) throws(CLIError) -> CommandLineParse {
        var chain = [root]
        var options: [String: [String]] = [:]
        var loose: [String] = []
        var index = 0
        var onlyPositionals = false
        func path() -> [String] { chain.dropFirst().map(\.name) }

        do throws(CLIError) {
            while index < words.count {
                let word = words[index]
                index += 1
                if onlyPositionals {
                    loose.append(word)
                } else if word == "--" {
                    onlyPositionals = true
                } else if isOption(word) {
                    let (spec, inline) = try lookUp(word, in: visibleOptions(chain))
                    if spec.name == OptionSpec.help.name { return .help(chain) }
                    switch spec.kind {
                    case .flag:
                        if inline != nil { throw CLIError.usage("option '\(spec.flagName)' takes no value") }
                        options[spec.name] = ["true"]
                    case .value:
                        if options[spec.name] != nil, !spec.repeatable {
                            throw CLIError.usage("option '\(spec.flagName)' was given more than once")
                        }
                        let value: String
                        if let inline {
                            value = inline
                        } else if index < words.count, !isOption(words[index]) {
                            value = words[index]
                            index += 1
                        } else {
                            throw CLIError.usage("option '\(spec.flagName)' needs a value (\(spec.valueName))")
                        }
                        options[spec.name, default: []].append(value)
                    }
                } else if let current = chain.last, !current.subcommands.isEmpty, loose.isEmpty {
                    if let child = current.subcommand(named: word) {
                        chain.append(child)
                    } else if word == "help" {
                        return .help(try helpChain(from: chain, words: Array(words[index...])))
                    } else if current.handler != nil, !current.positionals.isEmpty {
                        loose.append(word)
                    } else {
                        throw unknownCommand(word, in: current)
                    }
                } else {
                    loose.append(word)
                }
            }
            let command = chain[chain.count - 1]
            if command.handler == nil {
                let names = command.subcommands.map(\.name).joined(separator: ", ")
                throw CLIError.usage("missing command; choose one of: \(names)")
            }
            return .run(chain: chain, options: options, positionals: try assign(loose, to: command.positionals))
        } catch {
            // "--help" anywhere (before "--") wins over mistakes elsewhere on the line.
            let beforeSeparator = words.prefix { $0 != "--" }
            if error.kind == .usage, beforeSeparator.contains("--help") || beforeSeparator.contains("-h") {
                return .help(chain)
            }
            throw error.at(path())
        }
    }

    /// Options the last command of the chain accepts: its own, its ancestors' global ones, `--help`.
    func visibleOptions(_ chain: [Command]) -> [OptionSpec] {
        var seen = Set<String>()
        var result: [OptionSpec] = []
        for (depth, command) in chain.enumerated().reversed() {
            for spec in command.options where depth == chain.count - 1 || spec.global {
                if seen.insert(spec.name).inserted { result.append(spec) }
            }
        }
        return result + [OptionSpec.help]
    }

    /// A word is an option if it starts with a dash, is not a lone "-", and is not a negative number.
    private func isOption(_ word: String) -> Bool {
        word.hasPrefix("-") && word != "-" && Double(word) == nil
    }

    private func lookUp(_ word: String, in specs: [OptionSpec]) throws(CLIError) -> (OptionSpec, String?) {
        if word.hasPrefix("--") {
            let body = word.dropFirst(2)
            let name = String(body.prefix { $0 != "=" })
            let inline = body.contains("=") ? String(body.drop { $0 != "=" }.dropFirst()) : nil
            if let spec = specs.first(where: { $0.name == name }) { return (spec, inline) }
            let hint = Suggestions.hint(for: name, among: specs.map(\.name), prefix: "--")
            throw CLIError.usage("unknown option '--\(name)'\(hint)")
        }
        let letters = word.dropFirst()
        if letters.count == 1, let spec = specs.first(where: { $0.short == letters.first }) { return (spec, nil) }
        throw CLIError.usage("unknown option '\(word)'")
    }

    private func unknownCommand(_ word: String, in command: Command) -> CLIError {
        let hint = Suggestions.hint(for: word, among: command.subcommands.map(\.name))
        return CLIError.usage("unknown command '\(word)'\(hint)")
    }

    /// `help rollout start`: the chain those words name, below `chain`.
    private func helpChain(from chain: [Command], words: [String]) throws(CLIError) -> [Command] {
        var chain = chain
        for word in words {
            guard let current = chain.last, let child = current.subcommand(named: word) else {
                throw unknownCommand(word, in: chain[chain.count - 1]).at(chain.dropFirst().map(\.name))
            }
            chain.append(child)
        }
        return chain
    }

    private func assign(_ words: [String], to specs: [PositionalSpec]) throws(CLIError) -> [String: [String]] {
        var result: [String: [String]] = [:]
        var rest = words[...]
        for spec in specs {
            if spec.variadic {
                result[spec.name] = Array(rest)
                if rest.isEmpty, !spec.optional { throw CLIError.usage("missing argument \(spec.name)") }
                rest = []
            } else if let word = rest.first {
                result[spec.name] = [word]
                rest = rest.dropFirst()
            } else if !spec.optional {
                throw CLIError.usage("missing argument \(spec.name)")
            }
        }
        if let extra = rest.first { throw CLIError.usage("unexpected argument '\(extra)'") }
        return result
    }
}
