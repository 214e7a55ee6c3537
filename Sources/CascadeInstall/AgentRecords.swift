import Foundation

/// The outcome of the last upgrade of a program, kept in the state directory for `status`
/// and for the CLI waiting on an upgrade it asked for.
public struct UpgradeResult: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        case upgraded
        case rolledBack = "rolled back"
        case refused
    }

    public var program: Program
    public var version: String
    public var outcome: Outcome
    public var reason: String
    /// Seconds since 1970, so a waiter can tell this result from an older one.
    public var time: Double

    public init(program: Program, version: String, outcome: Outcome, reason: String, time: Double? = nil) {
        self.program = program
        self.version = version
        self.outcome = outcome
        self.reason = reason
        self.time = time ?? Date().timeIntervalSince1970
    }
}

/// Small JSON records in the state directory: failed versions, last results, crash loops.
public struct AgentRecords: Sendable {
    public let layout: AgentLayout

    public init(layout: AgentLayout) {
        self.layout = layout
    }

    /// Versions of `program` that failed, with the reason; they are not tried again unless asked.
    public func failures(_ program: Program) -> [String: String] {
        decode([String: String].self, layout.failureLog(program)) ?? [:]
    }

    public func recordFailure(_ program: Program, version: String, reason: String) throws(InstallError) {
        var all = failures(program)
        all[version] = reason
        try encode(all, layout.failureLog(program))
    }

    public func forgetFailure(_ program: Program, version: String) throws(InstallError) {
        var all = failures(program)
        guard all.removeValue(forKey: version) != nil else { return }
        try encode(all, layout.failureLog(program))
    }

    public func lastResult(_ program: Program) -> UpgradeResult? {
        decode(UpgradeResult.self, layout.resultFile(program))
    }

    public func recordResult(_ result: UpgradeResult) throws(InstallError) {
        try encode(result, layout.resultFile(result.program))
    }

    /// Why `program` is in a crash loop, when it is.
    public func crashLoop(_ program: Program) -> String? {
        try? Posix.readText(layout.crashLoopFile(program))
    }

    public func setCrashLoop(_ program: Program, reason: String?) {
        if let reason {
            try? Posix.writeAtomically(layout.crashLoopFile(program), Array(reason.utf8))
        } else {
            unlink(layout.crashLoopFile(program))
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ path: String) -> T? {
        guard let bytes = try? Posix.readFile(path) else { return nil }
        return try? JSONDecoder().decode(type, from: Data(bytes))
    }

    private func encode<T: Encodable>(_ value: T, _ path: String) throws(InstallError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(value) else { throw InstallError(.io, "cannot encode \(path)") }
        try Posix.writeAtomically(path, Array(data))
    }
}
