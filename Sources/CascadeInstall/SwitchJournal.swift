import Foundation

/// The persisted "switch in progress" record of one program: written (temp, fsync, rename)
/// before each step of an upgrade, removed when the upgrade is settled either way.
public struct SwitchRecord: Codable, Sendable, Equatable {
    public enum Phase: String, Codable, Sendable {
        /// The new release is in place; `current` still names `from`.
        case prepared
        /// `current` may name `to`; the new release is not confirmed healthy.
        case switched
        /// The new release reported healthy; only the bookkeeping (previous, prune) may be left.
        case confirmed
    }

    public var program: Program
    /// The release that ran before (nil for a first install).
    public var from: String?
    public var to: String
    public var phase: Phase

    public init(program: Program, from: String?, to: String, phase: Phase) {
        self.program = program
        self.from = from
        self.to = to
        self.phase = phase
    }
}

/// What repairing an interrupted switch did.
public enum RepairOutcome: Sendable, Equatable, CustomStringConvertible {
    /// The unconfirmed release was abandoned and `current` names the old one again.
    case rolledBack(program: Program, from: String, to: String)
    /// The switch had been confirmed; its bookkeeping was finished.
    case completed(program: Program, version: String)

    public var description: String {
        switch self {
        case .rolledBack(let program, let from, let to):
            "an interrupted switch of \(program) from \(from) to \(to) was rolled back to \(from)"
        case .completed(let program, let version):
            "a confirmed switch of \(program) to \(version) was completed"
        }
    }
}

/// Reads, writes and repairs switch records. Callers hold the layout's switch lock.
public struct SwitchJournal: Sendable {
    public let layout: AgentLayout
    private var store: ReleaseStore { ReleaseStore(layout: layout) }

    public init(layout: AgentLayout) {
        self.layout = layout
    }

    public func load(_ program: Program) throws(InstallError) -> SwitchRecord? {
        guard let bytes = try Posix.readFile(layout.switchRecord(program)) else { return nil }
        guard let record = try? JSONDecoder().decode(SwitchRecord.self, from: Data(bytes)) else {
            throw InstallError(.layout, "the switch record \(layout.switchRecord(program)) is unreadable; remove it and check `current`")
        }
        return record
    }

    public func save(_ record: SwitchRecord) throws(InstallError) {
        guard let data = try? JSONEncoder().encode(record) else { throw InstallError(.io, "cannot encode a switch record") }
        try Posix.writeAtomically(layout.switchRecord(record.program), Array(data))
    }

    public func clear(_ program: Program) throws(InstallError) {
        let path = layout.switchRecord(program)
        if unlink(path) != 0 && errno != ENOENT {
            throw InstallError(.io, "cannot remove \(path): \(Posix.lastError)")
        }
        try Posix.fsyncDirectory(layout.stateDirectory)
    }

    /// Settles the record `program` left, if any: an unconfirmed switch goes back to `from`,
    /// a confirmed one is finished. Idempotent, so a crash during repair is repaired again.
    public func repair(_ program: Program) throws(InstallError) -> RepairOutcome? {
        guard let record = try load(program) else {
            store.prune(program, keeping: [])
            return nil
        }
        let outcome: RepairOutcome
        switch (record.phase, record.from) {
        case (.confirmed, _), (_, nil):
            // A confirmed switch, or a first install that has nothing to go back to.
            if store.currentVersion(program) != record.to { try store.point(program, at: record.to) }
            if let from = record.from, from != record.to { try store.point(program, current: false, at: from) }
            outcome = .completed(program: program, version: record.to)
        case (_, let from?):
            if store.currentVersion(program) != from { try store.point(program, at: from) }
            outcome = .rolledBack(program: program, from: from, to: record.to)
        }
        try clear(program)
        store.prune(program, keeping: [])
        return outcome
    }
}
