import CascadeLog
import Foundation
import Synchronization
import Testing

/// Lines a test collects instead of writing them to standard error.
final class CollectedLines: Sendable {
    let records = Mutex<[(LogRecord, String)]>([])
    var lines: [String] { records.withLock { $0.map(\.1) } }

    func output(program: String = "cascade-test", level: LogLevel = .info, format: LogFormat = .text) -> LogOutput {
        LogOutput(program: program, level: level, format: format) { record, line in
            self.records.withLock { $0.append((record, line)) }
        }
    }
}

/// A clock a test moves by hand.
final class ManualClock: Sendable {
    private let start = ContinuousClock.now
    private let offset = Mutex<Duration>(.zero)
    func advance(_ duration: Duration) { offset.withLock { $0 += duration } }
    var now: ContinuousClock.Instant { start + offset.withLock { $0 } }
}

/// The shape of a text line: time, level, program[pid], component, message, fields.
var textLine: Regex<(Substring, Substring, Substring, Substring, Substring, Substring, Substring)> { #/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (debug|info|warning|error) ([A-Za-z0-9._-]+)\[(\d+)\] ([A-Za-z0-9._-]+): (.*)$/# }

func jsonObject(_ line: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
    return try #require(object as? [String: Any], "not a JSON object: \(line)")
}

@Suite("Structured logs")
struct LogTests {
    @Test("a text line: RFC 3339 UTC time with milliseconds, level, program[pid], component, message, key=value fields")
    func textShape() throws {
        let collected = CollectedLines()
        let log = Logger("engine", output: collected.output(program: "cascade-coordinator"))
        log.info("rollout 3 succeeded", ["rollout": "3", "release": "1.1.0", "why": "every agent is healthy"])
        let line = try #require(collected.lines.first)
        let match = try #require(line.wholeMatch(of: textLine), "\(line)")
        #expect(match.2 == "info")
        #expect(match.3 == "cascade-coordinator")
        #expect(match.4 == "\(getpid())")
        #expect(match.5 == "engine")
        #expect(match.6 == #"rollout 3 succeeded rollout=3 release=1.1.0 why="every agent is healthy""#)
        // The time is now's, in UTC.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let time = try #require(formatter.date(from: String(match.1)))
        #expect(abs(time.timeIntervalSinceNow) < 60)
    }

    @Test("timestamps are RFC 3339 UTC with exactly three fractional digits")
    func timestamps() {
        #expect(LogEncoding.timestamp(0) == "1970-01-01T00:00:00.000Z")
        #expect(LogEncoding.timestamp(1_700_000_000_007) == "2023-11-14T22:13:20.007Z")
        #expect(LogEncoding.timestamp(951_782_400_999) == "2000-02-29T00:00:00.999Z")
    }

    @Test("a JSON line is one object with time, level, program, pid, component, message and the fields as strings")
    func jsonShape() throws {
        let collected = CollectedLines()
        let log = Logger("tls", output: collected.output(program: "cascade-coordinator", format: .json))
        log.warning("refused a TLS handshake", ["reason": "expired", "peer": "127.0.0.1:5000", "message": "collides"])
        let line = try #require(collected.lines.first)
        #expect(!line.contains("\n"))
        let object = try jsonObject(line)
        #expect(object["level"] as? String == "warning")
        #expect(object["program"] as? String == "cascade-coordinator")
        #expect(object["pid"] as? Int == Int(getpid()))
        #expect(object["component"] as? String == "tls")
        #expect(object["message"] as? String == "refused a TLS handshake")
        #expect(object["reason"] as? String == "expired")
        #expect(object["peer"] as? String == "127.0.0.1:5000")
        #expect(object["field_message"] as? String == "collides")
        let time = try #require(object["time"] as? String)
        #expect(time.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#) != nil)
    }

    @Test("control characters in messages and values are escaped in both formats: no raw ESC, newline or C1 control reaches the line")
    func controlCharacters() throws {
        let hostile = "1.0\u{1B}[31mRED\u{1B}[0m\nforged line\r\u{07}\u{9B}2J\u{202E}txt.exe\\\"q"
        for format in LogFormat.allCases {
            let collected = CollectedLines()
            let log = Logger("agents", output: collected.output(format: format))
            log.warning("agent says \(hostile)", ["version": hostile, "detail\n": hostile])
            let lines = collected.lines
            #expect(lines.count == 1)
            let line = try #require(lines.first)
            #expect(!line.unicodeScalars.contains { LogEncoding.mustEscape($0) }, "\(format): \(line.debugDescription)")
            switch format {
            case .text:
                #expect(line.contains(#"agent says 1.0\x1B[31mRED\x1B[0m\nforged line\r\x07\x9B2J\u{202E}txt.exe\"q"#), "\(line)")
                #expect(line.contains(#" version="1.0\x1B[31mRED\x1B[0m\nforged line\r\x07\x9B2J\u{202E}txt.exe\\\"q""#), "\(line)")
                #expect(line.contains(" detail_="), "\(line)")
            case .json:
                // The JSON decodes back to exactly what was logged (RFC 8259 escapes).
                let object = try jsonObject(line)
                #expect(object["message"] as? String == "agent says \(hostile)")
                #expect(object["version"] as? String == hostile)
                #expect(object["detail_"] as? String == hostile)
                #expect(line.contains(#"\u001b[31m"#) && line.contains(#"\n"#) && line.contains(#"\u009b"#) && line.contains(#"\u202e"#))
            }
        }
    }

    @Test("every character below U+0020 and DEL survive a JSON round trip escaped")
    func jsonEscapesEveryControl() throws {
        let all = String(String.UnicodeScalarView((0..<0x20).compactMap(Unicode.Scalar.init) + ["\u{7F}", "\"", "\\", "/"]))
        let encoded = LogEncoding.jsonString(all)
        #expect(!encoded.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
        let decoded = try JSONSerialization.jsonObject(with: Data("[\(encoded)]".utf8)) as? [String]
        #expect(decoded == [all])
    }

    @Test("--log-level drops the lines below it; levels and formats parse by name")
    func levels() {
        let collected = CollectedLines()
        let log = Logger("x", output: collected.output(level: .warning))
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        #expect(collected.records.withLock { $0.map(\.0.level) } == [.warning, .error])
        #expect(LogLevel(name: "WARN") == .warning)
        #expect(LogLevel(name: "verbose") == nil)
        #expect(LogFormat(name: "JSON") == .json)
        #expect(LogFormat(name: "xml") == nil)
    }

    @Test("a logger without an output of its own follows Logging.configure, even when made before it")
    func processSettings() {
        let collected = CollectedLines()
        let log = Logger("late")
        Logging.configure(collected.output(program: "configured", level: .debug))
        defer { Logging.configure(program: nil) }
        log.debug("seen")
        #expect(collected.records.withLock { $0.map(\.0.program) } == ["configured"])
    }

    @Test("rate limiting: at most N lines per window per reason, then one 'suppressed K similar' summary when the window ends")
    func rateLimit() throws {
        let collected = CollectedLines()
        let clock = ManualClock()
        let summaries = Mutex<[String: Int]>([:])
        let limited = RateLimitedLog(
            Logger("tls", output: collected.output()), limit: 3, window: .seconds(10), now: { clock.now },
            automaticFlush: false, onSummary: { key, count in summaries.withLock { $0[key] = count } })
        for attempt in 0..<50 { limited.log(.warning, key: "expired", "refused \(attempt)") }
        for attempt in 0..<2 { limited.log(.warning, key: "unknown-ca", "other \(attempt)") }
        #expect(collected.lines.count == 5)
        #expect(collected.lines.filter { $0.contains("reason=expired") }.count == 3)
        clock.advance(.seconds(5))
        limited.flush()
        #expect(collected.lines.count == 5, "a window that has not ended reports nothing yet")
        clock.advance(.seconds(6))
        limited.flush()
        let summary = try #require(collected.lines.last)
        #expect(summary.contains("suppressed 47 similar lines in the last 10s reason=expired suppressed=47"), "\(summary)")
        #expect(summaries.withLock { $0 } == ["expired": 47])
        // A new window admits lines again.
        #expect(limited.log(.warning, key: "expired", "again"))
        #expect(collected.lines.last?.contains("again") == true)
    }

    @Test("a key's next line after its window ended writes the summary first, without waiting for a flush")
    func summaryOnNextLine() {
        let collected = CollectedLines()
        let clock = ManualClock()
        let limited = RateLimitedLog(Logger("rpc", output: collected.output()), limit: 1, window: .seconds(10), now: { clock.now }, automaticFlush: false)
        limited.log(.warning, key: "denied", "first")
        limited.log(.warning, key: "denied", "second")
        limited.log(.warning, key: "denied", "third")
        clock.advance(.seconds(11))
        limited.log(.warning, key: "denied", "fourth")
        let lines = collected.lines
        #expect(lines.count == 3)
        #expect(lines[1].contains("suppressed 2 similar lines"))
        #expect(lines[2].contains("fourth"))
    }

    @Test("the timer writes the summary of a window that ended with no line after it")
    func summaryByTimer() async throws {
        let collected = CollectedLines()
        let limited = RateLimitedLog(Logger("tls", output: collected.output()), limit: 1, window: .milliseconds(100))
        limited.log(.warning, key: "no-identity", "one")
        limited.log(.warning, key: "no-identity", "two")
        let deadline = ContinuousClock.now + .seconds(10)
        while !collected.lines.contains(where: { $0.contains("suppressed 1 similar line in the last 0.1s") }) {
            #expect(ContinuousClock.now < deadline, "no summary: \(collected.lines)")
            if ContinuousClock.now >= deadline { return }
            try await Task.sleep(for: .milliseconds(20))  // polling for the timer's line
        }
    }
}
