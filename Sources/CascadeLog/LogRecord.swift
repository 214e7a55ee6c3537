/// One key=value pair of a log line. Keys are chosen by the code (lower case, digits, `_`, `-`,
/// `.`); values may hold anything, and are escaped when written.
public struct LogField: Sendable, Hashable {
    public var key: String
    public var value: String

    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// One event, before it is written as a line.
public struct LogRecord: Sendable, Hashable {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var timeMilliseconds: Int64
    public var level: LogLevel
    /// The program ("cascade-coordinator") and its process id.
    public var program: String
    public var pid: Int32
    /// The part of the program that speaks ("tls", "engine", "supervisor").
    public var component: String
    public var message: String
    public var fields: [LogField]

    public init(
        timeMilliseconds: Int64, level: LogLevel, program: String, pid: Int32, component: String, message: String,
        fields: [LogField] = []
    ) {
        self.timeMilliseconds = timeMilliseconds
        self.level = level
        self.program = program
        self.pid = pid
        self.component = component
        self.message = message
        self.fields = fields
    }

    /// The value of the first field named `key`.
    public func field(_ key: String) -> String? {
        fields.first { $0.key == key }?.value
    }
}
