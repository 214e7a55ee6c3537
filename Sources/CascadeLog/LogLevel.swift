/// How much a log line matters. A program logs the lines at or above its `--log-level`.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case debug, info, warning, error

    /// Parses "debug", "info", "warning" (or "warn") and "error", in any case.
    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }

    public var description: String { name }

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    /// For help texts and error messages: "debug, info, warning or error".
    public static let choices = "debug, info, warning or error"
}

/// How a line is written: plain text, or one JSON object per line.
public enum LogFormat: String, Sendable, CaseIterable, CustomStringConvertible {
    case text, json

    public init?(name: String) {
        self.init(rawValue: name.lowercased())
    }

    public var description: String { rawValue }

    public static let choices = "text or json"
}
