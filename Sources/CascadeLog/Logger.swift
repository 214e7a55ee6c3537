import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where a program's lines go and which ones: its name, the lowest level written, the format
/// and the destination (standard error, or a closure for in-process peers and tests).
public final class LogOutput: Sendable {
    public let program: String
    public let pid: Int32
    public let level: LogLevel
    public let format: LogFormat
    private let sink: (@Sendable (LogRecord, String) -> Void)?
    /// Writes nothing at any level (`LogOutput.discarding`).
    public let discards: Bool

    /// Lines to standard error (what systemd's journal or a test's log file keeps).
    public init(program: String, level: LogLevel = .info, format: LogFormat = .text) {
        self.program = program
        self.pid = getpid()
        self.level = level
        self.format = format
        self.sink = nil
        self.discards = false
    }

    /// Each record and its formatted line to `sink` instead (several agents in one process).
    public init(program: String, level: LogLevel = .info, format: LogFormat = .text, sink: @escaping @Sendable (LogRecord, String) -> Void) {
        self.program = program
        self.pid = getpid()
        self.level = level
        self.format = format
        self.sink = sink
        self.discards = false
    }

    private init(discarding program: String) {
        self.program = program
        self.pid = getpid()
        self.level = .error
        self.format = .text
        self.sink = nil
        self.discards = true
    }

    /// An output that writes nothing (in-process peers whose lines nobody reads).
    public static let discarding = LogOutput(discarding: "none")

    /// Whether a line at `level` is written.
    public func accepts(_ level: LogLevel) -> Bool { !discards && level >= self.level }

    public func write(_ record: LogRecord) {
        guard !discards else { return }
        let line = LogEncoding.line(record, format: format)
        if let sink {
            sink(record, line)
        } else {
            StandardError.write(line + "\n")
        }
    }
}

/// The process's log settings: set once at start (`Logging.configure`), read by every `Logger`
/// that was not given an output of its own.
public enum Logging {
    private static let shared = Mutex<LogOutput>(LogOutput(program: defaultProgramName))

    public static var output: LogOutput { shared.withLock { $0 } }

    /// Sets the program's name, level and format (from its flags, config file or environment).
    public static func configure(program: String? = nil, level: LogLevel = .info, format: LogFormat = .text) {
        let output = LogOutput(program: program ?? defaultProgramName, level: level, format: format)
        shared.withLock { $0 = output }
    }

    public static func configure(_ output: LogOutput) {
        shared.withLock { $0 = output }
    }

    /// The executable's file name ("cascade-agent").
    public static var defaultProgramName: String {
        guard let first = CommandLine.arguments.first, !first.isEmpty else { return "cascade" }
        return first.split(separator: "/").last.map(String.init) ?? first
    }
}

/// Writes log lines for one component of a program. Cheap to make and copy; a logger made
/// without an output follows `Logging.configure`, even when configured later.
public struct Logger: Sendable {
    public let component: String
    private let fixedOutput: LogOutput?

    public init(_ component: String, output: LogOutput? = nil) {
        self.component = component
        self.fixedOutput = output
    }

    public var output: LogOutput { fixedOutput ?? Logging.output }

    /// The same output under another component name.
    public func component(_ name: String) -> Logger { Logger(name, output: fixedOutput) }

    public func isEnabled(_ level: LogLevel) -> Bool { output.accepts(level) }

    public func log(_ level: LogLevel, _ message: @autoclosure () -> String, fields: [LogField]) {
        let output = self.output
        guard output.accepts(level) else { return }
        output.write(LogRecord(
            timeMilliseconds: LogEncoding.nowMilliseconds(), level: level, program: output.program, pid: output.pid,
            component: component, message: message(), fields: fields))
    }

    public func log(_ level: LogLevel, _ message: @autoclosure () -> String, _ fields: KeyValuePairs<String, String> = [:]) {
        guard isEnabled(level) else { return }
        log(level, message(), fields: fields.map { LogField($0.key, $0.value) })
    }

    public func debug(_ message: @autoclosure () -> String, _ fields: KeyValuePairs<String, String> = [:]) {
        log(.debug, message(), fields)
    }

    public func info(_ message: @autoclosure () -> String, _ fields: KeyValuePairs<String, String> = [:]) {
        log(.info, message(), fields)
    }

    public func warning(_ message: @autoclosure () -> String, _ fields: KeyValuePairs<String, String> = [:]) {
        log(.warning, message(), fields)
    }

    public func error(_ message: @autoclosure () -> String, _ fields: KeyValuePairs<String, String> = [:]) {
        log(.error, message(), fields)
    }

    /// `log("...")`: an info line.
    public func callAsFunction(_ message: @autoclosure () -> String, _ fields: KeyValuePairs<String, String> = [:]) {
        log(.info, message(), fields)
    }
}

/// Writes to fd 2 directly: one write per line where the kernel takes it whole (no stdio
/// buffer shared between threads, and nothing lost to a SIGKILL once written).
public enum StandardError {
    private static let lock = Mutex(())

    public static func write(_ text: String) {
        var bytes = Array(text.utf8)
        lock.withLock { _ in
            bytes.withUnsafeMutableBytes { raw in
                guard let base = raw.baseAddress else { return }
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.write(2, base + offset, raw.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
    }
}
