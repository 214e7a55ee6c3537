import CascadeLog

/// The coordinator's general logger: `log("...")` writes an info line of component
/// "coordinator". The components below say more about where a line comes from.
let log = Logger("coordinator")

/// The coordinator's log components (`--log-format`, `--log-level`; README "Logs").
enum Logs {
    /// Registrations, sessions, heartbeats, reports, leader changes.
    static let agents = Logger("agents")
    /// Pushes, verification, deletion, damage.
    static let releases = Logger("releases")
    /// Operators' rollout requests and the rollout engine's decisions.
    static let rollouts = Logger("rollouts")
    /// Accepting connections and refused TLS handshakes.
    static let tls = Logger("tls")
    /// Calls refused with PERMISSION_DENIED.
    static let access = Logger("access")
}
