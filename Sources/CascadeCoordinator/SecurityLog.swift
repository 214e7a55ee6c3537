import CascadeAPI
import CascadeLog
import CascadeNet
import CascadeRPC
import CascadeStore

/// Refused TLS handshakes and calls answered PERMISSION_DENIED: each is a warning (at most
/// `limit` lines per reason per 10 s, then one "suppressed K similar" line), and each logged
/// denial is also a `security.permission-denied` event in the audit log (services.md §3.9),
/// with one event for the ones held back. A peer that repeats a refused handshake or call
/// thousands of times a second costs a few lines and rows, not a flooded disk.
final class SecurityLog: Sendable {
    let handshakes: RateLimitedLog
    let denials: RateLimitedLog
    private let store: StoreExecutor

    init(store: StoreExecutor, limit: Int = 5, window: Duration = .seconds(10)) {
        self.store = store
        handshakes = RateLimitedLog(Logs.tls, limit: limit, window: window)
        denials = RateLimitedLog(Logs.access, limit: limit, window: window, onSummary: { key, count in
            Self.audit(store, actor: .coordinator(), subject: "coordinator:self",
                       detail: "\(count) more calls refused with PERMISSION_DENIED (\(key)) within \(window) were not recorded one by one")
        })
    }

    /// A handshake the server did not complete: the TLS sentence (cause and fix), the peer's
    /// address and, when it presented one, its certificate's subject and identity.
    func handshakeFailed(_ failure: HandshakeFailure) {
        var fields = [LogField("peer", failure.peer.map { "\($0)" } ?? "unknown")]
        if let certificate = failure.peerCertificate { fields.append(LogField("certificate", certificate)) }
        handshakes.log(.warning, key: failure.reason, failure.message, fields: fields)
    }

    /// A call refused with PERMISSION_DENIED. An agent's refused registration has its own event
    /// (`security.registration-refused`, written by the handler), so it is only logged here.
    func denied(_ call: DeniedCall) {
        let role = call.peer?.role.rawValue ?? "unauthenticated"
        let key = "\(role) \(call.method)"
        guard denials.admit(key) else { return }
        let from = call.address.map { "\($0)" } ?? "unknown"
        Logs.access.warning(
            "permission denied: \(call.message) (from \(from))",
            ["reason": "permission-denied", "method": call.method, "peer": call.peer?.uri ?? "none", "address": from])
        guard let peer = call.peer, !(call.method == CoordinatorService.register.name && peer.role == .agent) else { return }
        let actor = EventActor(role: peer.role.rawValue, id: peer.id)
        Self.audit(store, actor: actor, subject: "\(peer.role.rawValue):\(peer.id)",
                   detail: "\(call.method) refused: \(call.message) (from \(from))")
    }

    /// Appends the event off the connection's thread (the store may wait on its writer).
    private static func audit(_ store: StoreExecutor, actor: EventActor, subject: String, detail: String) {
        Task {
            _ = try? await store.run { store throws(StoreError) in
                try store.appendEvent(actor: actor, kind: .securityPermissionDenied, subject: subject, detail: detail)
            }
        }
    }
}
