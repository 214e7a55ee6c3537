/// Where an option's value came from; named in error messages.
public enum ValueSource: Sendable, Equatable {
    /// Typed on the command line.
    case commandLine
    /// Read from this environment variable.
    case environment(String)
    /// Read from this config file, at this line.
    case config(path: String, line: Int)
    /// The option's declared default.
    case defaultValue

    /// The parenthesised suffix for error messages: ` (from CASCADE_X)`, or empty for the command line.
    var suffix: String {
        switch self {
        case .commandLine: ""
        case .environment(let name): " (from \(name))"
        case .config(let path, let line): " (from \(path) line \(line))"
        case .defaultValue: " (the default)"
        }
    }
}

/// A config file: `key = value` lines, `#` comments, keys are long option names.
public struct ConfigFile: Sendable, Equatable {
    /// One assignment and where it was.
    public struct Entry: Sendable, Equatable {
        /// The value, without surrounding spaces or matching quotes.
        public var value: String
        /// 1-based line number.
        public var line: Int
    }

    /// The file's path, as named in messages.
    public let path: String
    /// Assignments by key; a repeated key keeps the last one (repeatable options join them).
    public private(set) var entries: [String: [Entry]] = [:]
    /// Keys in first-appearance order (for stable error messages).
    public private(set) var keys: [String] = []

    /// Parses `text`; throws a failure naming the path and line of the first malformed line.
    public init(path: String, text: String) throws(CLIError) {
        self.path = path
        var number = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = String(rawLine).trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw CLIError.failure("\(path) line \(number): expected 'key = value', got '\(line)'")
            }
            let key = String(line[..<equals]).trimmingSpaces
            var value = String(line[line.index(after: equals)...]).trimmingSpaces
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw CLIError.failure("\(path) line \(number): '\(key)' is not a valid key")
            }
            // Quotes let a value keep a leading '#' or spaces; an unquoted '#' after spaces starts a comment.
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            } else if let hash = value.firstRange(of: " #") {
                value = String(value[..<hash.lowerBound]).trimmingSpaces
            }
            if entries[key] == nil { keys.append(key) }
            entries[key, default: []].append(Entry(value: value, line: number))
        }
    }
}

/// Reads a file's text, or returns nil if it does not exist; throws for other errors.
public typealias FileReader = @Sendable (String) throws -> String?

/// What a program reads from the outside world; injected in tests.
public struct CLIEnvironment: Sendable {
    /// Environment variables.
    public var variables: [String: String]
    /// How config files are read.
    public var readFile: FileReader
    /// Where output goes.
    public var console: Console

    /// An environment from explicit parts (tests pass a dictionary and an in-memory reader).
    public init(variables: [String: String] = [:], console: Console,
                readFile: @escaping FileReader = { _ in nil }) {
        self.variables = variables
        self.readFile = readFile
        self.console = console
    }

    /// The real process: its environment, its files, fds 1 and 2.
    public static var process: CLIEnvironment {
        CLIEnvironment(variables: processEnvironment(), console: .standard, readFile: readFileFromDisk)
    }
}
