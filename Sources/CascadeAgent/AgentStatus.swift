public import CascadeInstall
import CascadeUpgrader

/// The state of one program, as files and locks show it.
public struct ProgramStatus: Sendable, Equatable {
    public var program: Program
    public var current: String?
    public var previous: String?
    /// pid and version of the running instance, nil when it does not run.
    public var running: (pid: Int32, version: String)?
    public var switchInProgress: SwitchRecord?
    public var failedVersions: [String: String]
    public var crashLoop: String?
    public var lastResult: UpgradeResult?

    public static func == (lhs: ProgramStatus, rhs: ProgramStatus) -> Bool {
        lhs.program == rhs.program && lhs.current == rhs.current && lhs.previous == rhs.previous
            && lhs.running?.pid == rhs.running?.pid && lhs.running?.version == rhs.running?.version
            && lhs.switchInProgress == rhs.switchInProgress && lhs.failedVersions == rhs.failedVersions
            && lhs.crashLoop == rhs.crashLoop && lhs.lastResult == rhs.lastResult
    }
}

/// `cascade-agent status`: both programs' releases and processes, read without the daemons'
/// help (so it works when one of them is down).
public enum AgentStatus {
    public static func read(_ layout: AgentLayout) -> [ProgramStatus] {
        let store = ReleaseStore(layout: layout)
        let records = AgentRecords(layout: layout)
        let journal = SwitchJournal(layout: layout)
        return Program.allCases.map { program in
            let supervisor = PeerSupervisor(layout: layout, program: program, arguments: [], config: AgentConfig())
            return ProgramStatus(
                program: program, current: store.currentVersion(program), previous: store.previousVersion(program),
                running: supervisor.running(), switchInProgress: (try? journal.load(program)) ?? nil,
                failedVersions: records.failures(program), crashLoop: records.crashLoop(program),
                lastResult: records.lastResult(program))
        }
    }

    public static func render(_ statuses: [ProgramStatus], root: String) -> String {
        var lines = ["agent root: \(root)"]
        for status in statuses {
            let name = status.program == .main ? "main program (cascade-agent)" : "upgrader (cascade-upgrader)"
            lines.append("\(name):")
            lines.append("  current release:  \(status.current ?? "none")\(status.previous.map { " (previous \($0))" } ?? "")")
            if let running = status.running {
                lines.append("  process:          running, pid \(running.pid), version \(running.version)")
            } else {
                lines.append("  process:          not running")
            }
            if let record = status.switchInProgress {
                lines.append("  switch:           in progress from \(record.from ?? "nothing") to \(record.to) (\(record.phase.rawValue))")
            }
            if let result = status.lastResult {
                lines.append("  last upgrade:     \(result.version) \(result.outcome.rawValue): \(result.reason)")
            }
            for (version, reason) in status.failedVersions.sorted(by: { $0.key < $1.key }) {
                lines.append("  failed version:   \(version) (\(reason)); not retried unless asked")
            }
            if let loop = status.crashLoop { lines.append("  CRASH LOOP:       \(loop)") }
        }
        return lines.joined(separator: "\n")
    }
}

/// The fleet line of `cascade-agent status`: what the running main program last published,
/// checked against the files and the process (a record from a dead process says nothing).
public enum FleetLinkView: Sendable, Equatable {
    case notConfigured
    case joined(coordinator: String?, role: String?)
    case retrying(String)
    /// fleet.conf exists but no running main program has said anything yet.
    case notJoined(String)

    public static func read(_ layout: AgentLayout, mainPid: Int32?) -> FleetLinkView {
        let configured = Posix.fileType(layout.fleetConfigFile) != nil
        let link = FleetLink.read(layout)
        guard configured else { return .notConfigured }
        guard let mainPid else { return .notJoined("the main program is not running; start the agent (systemctl start cascade-agent)") }
        guard let link, link.pid == mainPid else {
            return .notJoined("the main program (pid \(mainPid)) has not reported its fleet link yet")
        }
        switch link.state {
        case .joined: return .joined(coordinator: link.coordinator, role: link.role)
        case .retrying: return .retrying(link.reason ?? "no reason recorded")
        case .notConfigured: return .notJoined("\(layout.fleetConfigFile) appeared after the main program last looked; it is read again shortly")
        }
    }

    /// Whether `status` should exit non-zero: configured for a fleet but not in it.
    public var isFailure: Bool {
        switch self {
        case .notConfigured, .joined: false
        case .retrying, .notJoined: true
        }
    }

    public var line: String {
        switch self {
        case .notConfigured:
            "fleet:            not configured (no fleet.conf)"
        case .joined(let coordinator, let role):
            "fleet:            joined" + (coordinator.map { " coordinator \($0)" } ?? "") + (role.map { " as \($0)" } ?? "")
        case .retrying(let reason):
            "fleet:            retrying: \(reason)"
        case .notJoined(let reason):
            "fleet:            not joined: \(reason)"
        }
    }
}
