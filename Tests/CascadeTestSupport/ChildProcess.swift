import Foundation
import Synchronization

/// A child process whose output lines can be awaited with a deadline. Killed (SIGKILL) when
/// released if still running, so a failing test leaves nothing behind.
public final class ChildProcess: Sendable {
    private let process: Process
    private let output = Captured()
    private let errors = Captured()
    public let command: String

    public init(_ executable: String, _ arguments: [String], mergeStandardError: Bool = false) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = mergeStandardError ? out : err
        process.standardInput = FileHandle.nullDevice
        self.process = process
        self.command = ([executable] + arguments).joined(separator: " ")
        out.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            output.state.withLock { state in
                if data.isEmpty {
                    state.closed = true
                    if !state.partial.isEmpty { state.lines.append(state.partial) }
                    state.partial = ""
                    handle.readabilityHandler = nil
                    return
                }
                state.partial += String(decoding: data, as: UTF8.self)
                while let newline = state.partial.firstIndex(of: "\n") {
                    state.lines.append(String(state.partial[..<newline]))
                    state.partial = String(state.partial[state.partial.index(after: newline)...])
                }
            }
        }
        err.fileHandleForReading.readabilityHandler = { [errors] handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil; return }
            errors.state.withLock { $0.partial += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    public var pid: Int32 { process.processIdentifier }
    public var lines: [String] { output.state.withLock { $0.lines } }
    public var standardError: String { errors.state.withLock { $0.partial } }

    /// Waits for the first output line starting with `prefix`.
    public func line(startingWith prefix: String, within limit: Duration = .seconds(30)) async throws -> String {
        let found = try await waitUntil(within: limit, "a line starting with \"\(prefix)\" from \(command)") {
            self.lines.first { $0.hasPrefix(prefix) } ?? (self.process.isRunning ? nil : "")
        }
        guard !found.isEmpty else {
            throw TestFailure("\(command) exited (status \(process.terminationStatus)) before printing \"\(prefix)\"; stderr: \(standardError)")
        }
        return found
    }

    /// Waits for the process to exit and returns its status.
    public func exitStatus(within limit: Duration = .seconds(60)) async throws -> Int32 {
        try await waitUntil(within: limit, "\(command) to exit") {
            self.process.isRunning ? nil : self.process.terminationStatus
        }
    }

    /// Waits for the process to exit and for its last output line, the first one starting with
    /// `lastLine` (not for end of file: a daemon another test spawns meanwhile may inherit the
    /// pipe and hold it open); returns the status and the lines up to that one.
    public func finished(lastLine prefix: String, within limit: Duration = .seconds(60)) async throws -> (status: Int32, lines: [String]) {
        let status = try await exitStatus(within: limit)
        _ = try await line(startingWith: prefix, within: .seconds(10))
        let lines = self.lines
        let end = lines.firstIndex { $0.hasPrefix(prefix) } ?? lines.count - 1
        return (status, Array(lines[...end]))
    }

    public func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Output of a child stream: complete lines and the unfinished tail.
final class Captured: Sendable {
    let state = Mutex<(lines: [String], partial: String, closed: Bool)>(([], "", false))
}

/// Polls `condition` until it returns a value or `limit` passes (then throws). The polling
/// interval grows from 1 ms to 50 ms: a condition with a deadline, never a fixed sleep.
public func waitUntil<T>(
    within limit: Duration, _ what: String, _ condition: () throws -> T?
) async throws -> T {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    var interval = Duration.milliseconds(1)
    while true {
        if let value = try condition() { return value }
        guard clock.now < deadline else { throw TestFailure("timed out after \(limit) waiting for \(what)") }
        try await Task.sleep(for: interval)  // the poll interval, bounded by the deadline above
        interval = min(interval * 2, .milliseconds(50))
    }
}

/// `waitUntil` for a condition that must await (an RPC to ask, say).
public func waitUntilAsync<T>(
    within limit: Duration, _ what: String, _ condition: () async throws -> T?
) async throws -> T {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    var interval = Duration.milliseconds(1)
    while true {
        if let value = try await condition() { return value }
        guard clock.now < deadline else { throw TestFailure("timed out after \(limit) waiting for \(what)") }
        try await Task.sleep(for: interval)  // the poll interval, bounded by the deadline above
        interval = min(interval * 2, .milliseconds(50))
    }
}

/// The path of an executable product built next to the test bundle (e.g. "cascade-bench").
public func builtProduct(_ name: String) throws -> String {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
    }
    for candidate in [directory, directory.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw TestFailure("the product \(name) is not built next to the tests in \(directory.path); run `swift build` first")
}
