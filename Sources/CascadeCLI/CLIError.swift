/// An error a command-line program reports: a usage mistake (exit 2) or a failure (exit 1).
public struct CLIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Whether the user typed something wrong or the work itself failed.
    public enum Kind: Sendable, Equatable {
        /// The command line (or its environment/config values) was wrong: exit 2 with a hint.
        case usage
        /// The command was well formed but could not do its work: exit 1.
        case failure
    }

    /// Usage or failure.
    public let kind: Kind
    /// One sentence, no program prefix and no trailing newline.
    public let message: String
    /// The exit code the program ends with (2 for usage, 1 for failure unless overridden).
    public let exitCode: Int32
    /// The command path the hint line points at (`rollout start`); filled in by the parser.
    public var commandPath: [String]

    /// A usage error: the program prints the message and `Try '<program> <command> --help'.`
    public static func usage(_ message: String) -> CLIError {
        CLIError(kind: .usage, message: message, exitCode: ExitCode.usage, commandPath: [])
    }

    /// A failure: the program prints the message and exits 1 (or `exitCode`).
    public static func failure(_ message: String, exitCode: Int32 = ExitCode.failure) -> CLIError {
        CLIError(kind: .failure, message: message, exitCode: exitCode, commandPath: [])
    }

    public var description: String { message }

    /// The same error, pointing its hint at `path` unless it already names one.
    func at(_ path: [String]) -> CLIError {
        var copy = self
        if copy.commandPath.isEmpty { copy.commandPath = path }
        return copy
    }
}

/// The exit codes every Cascade program uses.
public enum ExitCode {
    /// The command did what was asked.
    public static let success: Int32 = 0
    /// The command was well formed but failed.
    public static let failure: Int32 = 1
    /// The command line was wrong.
    public static let usage: Int32 = 2
}
