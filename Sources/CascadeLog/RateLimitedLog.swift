import Dispatch
import Synchronization

/// Logs at most `limit` lines per `window` for each key (a refusal's reason, say), so a peer
/// that repeats a refused handshake or call thousands of times a second cannot flood the log.
/// When a window in which lines were held back ends, one summary line says how many
/// ("suppressed 42 similar lines in the last 10s"), written by a timer or by the key's next line,
/// whichever comes first.
public final class RateLimitedLog: Sendable {
    public let logger: Logger
    public let limit: Int
    public let window: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let automaticFlush: Bool
    /// Told about each summary (the key and how many were held back), besides the log line.
    private let onSummary: (@Sendable (String, Int) -> Void)?

    private struct Window {
        var start: ContinuousClock.Instant
        var written = 0
        var suppressed = 0
        var flushScheduled = false
    }

    private let windows = Mutex<[String: Window]>([:])
    /// Keys are a program's own categories, but a bound keeps a mistake from growing forever.
    private static let maxKeys = 1024

    public init(
        _ logger: Logger, limit: Int = 5, window: Duration = .seconds(10),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }, automaticFlush: Bool = true,
        onSummary: (@Sendable (String, Int) -> Void)? = nil
    ) {
        self.logger = logger
        self.limit = max(1, limit)
        self.window = window
        self.now = now
        self.automaticFlush = automaticFlush
        self.onSummary = onSummary
    }

    /// Whether a line for `key` may be written now (and counts it); false means it was counted
    /// as suppressed. For callers that do more than log for each admitted event (an audit).
    public func admit(_ key: String) -> Bool {
        let time = now()
        var summary: (key: String, count: Int)?
        var scheduleAfter: Duration?
        let admitted = windows.withLock { windows -> Bool in
            if var current = windows[key], time - current.start < window {
                if current.written < limit {
                    current.written += 1
                    windows[key] = current
                    return true
                }
                current.suppressed += 1
                if !current.flushScheduled && automaticFlush {
                    current.flushScheduled = true
                    scheduleAfter = window - (time - current.start)
                }
                windows[key] = current
                return false
            }
            if let ended = windows[key], ended.suppressed > 0 { summary = (key, ended.suppressed) }
            if windows[key] == nil && windows.count >= Self.maxKeys { Self.evict(&windows, now: time, window: window) }
            windows[key] = Window(start: time, written: 1)
            return true
        }
        if let summary { report(summary.key, summary.count) }
        if let scheduleAfter { schedule(after: scheduleAfter) }
        return admitted
    }

    /// Logs the line unless its key has used up this window; returns whether it was written.
    @discardableResult
    public func log(_ level: LogLevel, key: String, _ message: @autoclosure () -> String, fields: [LogField] = []) -> Bool {
        guard admit(key) else { return false }
        var all = fields
        if !all.contains(where: { $0.key == "reason" }) { all.append(LogField("reason", key)) }
        logger.log(level, message(), fields: all)
        return true
    }

    /// Writes the summary of every window that has ended with lines held back.
    public func flush() {
        let time = now()
        let ended = windows.withLock { windows -> [(String, Int)] in
            var result: [(String, Int)] = []
            for (key, current) in windows where time - current.start >= window {
                if current.suppressed > 0 { result.append((key, current.suppressed)) }
                windows[key] = nil
            }
            return result
        }
        for (key, count) in ended.sorted(by: { $0.0 < $1.0 }) { report(key, count) }
    }

    private func report(_ key: String, _ count: Int) {
        logger.log(
            .warning, "suppressed \(count) similar \(count == 1 ? "line" : "lines") in the last \(Self.describe(window))",
            fields: [LogField("reason", key), LogField("suppressed", "\(count)")])
        onSummary?(key, count)
    }

    private func schedule(after delay: Duration) {
        let (seconds, attoseconds) = delay.components
        let nanoseconds = max(0, Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)) + 1_000_000
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [weak self] in
            self?.flush()
        }
    }

    private static func evict(_ windows: inout [String: Window], now: ContinuousClock.Instant, window: Duration) {
        for (key, current) in windows where now - current.start >= window && current.suppressed == 0 {
            windows[key] = nil
        }
        if windows.count >= maxKeys, let oldest = windows.min(by: { $0.value.start < $1.value.start })?.key {
            windows[oldest] = nil
        }
    }

    static func describe(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 { return "\(seconds)s" }
        return "\(Double(seconds) + Double(attoseconds) / 1e18)s"
    }
}
