import CascadeLog
public import CascadeInstall
import CascadeUpgrader
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

private let log = Logger("fleet")

/// The main program's link to the fleet, as it publishes it in `state/fleet-link.json`
/// (written atomically on each change) for `cascade-agent status`, another process.
public struct FleetLink: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        /// Registered with the coordinator (it sent an assignment).
        case joined
        /// Not in the fleet; `reason` says why and what to fix. Tried again with backoff.
        case retrying
        /// No fleet.conf: a lone pair.
        case notConfigured = "not-configured"
    }

    public var state: State
    /// The main program that wrote it (a record from a dead one says nothing).
    public var pid: Int32
    public var coordinator: String?
    public var role: String?
    public var reason: String?

    /// A record of this process's link.
    public init(state: State, coordinator: String? = nil, role: String? = nil, reason: String? = nil) {
        self.state = state
        self.pid = getpid()
        self.coordinator = coordinator
        self.role = role
        self.reason = reason
    }

    public static func read(_ layout: AgentLayout) -> FleetLink? {
        guard let bytes = try? Posix.readFile(layout.fleetLinkFile) else { return nil }
        return try? JSONDecoder().decode(FleetLink.self, from: Data(bytes))
    }
}

/// Publishes the link as it changes, and remembers whether this process ever joined (the
/// "session established" part of its health).
final class FleetLinkPublisher: Sendable {
    let layout: AgentLayout
    private let last = Mutex<FleetLink?>(nil)
    private let everJoined = Atomic<Bool>(false)

    init(layout: AgentLayout) {
        self.layout = layout
    }

    var hasJoined: Bool { everJoined.load(ordering: .acquiring) }

    /// The link as last published.
    var current: FleetLink? { last.withLock { $0 } }

    /// Healthy as far as the fleet goes: joined, or no fleet.conf to join with.
    var isReady: Bool { hasJoined || Posix.fileType(layout.fleetConfigFile) == nil }

    func publish(_ link: FleetLink) {
        if link.state == .joined { everJoined.store(true, ordering: .releasing) }
        let changed = last.withLock { previous -> Bool in
            defer { previous = link }
            return previous != link
        }
        guard changed, let data = try? JSONEncoder().encode(link) else { return }
        do throws(InstallError) {
            try Posix.writeAtomically(layout.fleetLinkFile, Array(data))
        } catch {
            log.warning("cannot publish the fleet link for `cascade-agent status`: \(error.message)")
        }
    }
}
