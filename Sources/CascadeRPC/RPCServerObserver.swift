public import CascadeMetrics
import CascadeNet
import Synchronization

/// Told about every TLS handshake an `RPCServer` finishes and every call it ends: what
/// metrics are made of. Called on event-loop threads — for calls, with the connection's lock
/// held — so an observer must be quick, must not block, and must never call back into the
/// connection.
public protocol RPCServerObserver: Sendable {
    /// A handshake succeeded (`resumed`: a ticket resumption, no certificate exchange).
    func handshakeAccepted(resumed: Bool)
    /// A handshake failed or timed out; nothing was served on the connection.
    func handshakeRefused(_ error: any Error)
    /// A call ended with `code` after `seconds` — answered, refused (an unknown method,
    /// PERMISSION_DENIED), past its deadline, reset by the client or cut by a lost connection.
    /// `method` is what the client asked for, registered or not.
    func callEnded(method: String, code: RPCCode, seconds: Double)
}

/// One call being watched: its method and when it opened (kept in the stream's state).
struct CallObservation {
    let observer: any RPCServerObserver
    let method: String
    let opened: MonotonicTime

    func end(_ code: RPCCode) {
        observer.callEnded(method: method, code: code, seconds: MonotonicTime.now().seconds(since: opened))
    }
}

extension StreamState {
    /// Reports the call's end once (later ends of the same call are not calls of their own).
    func observeEnd(_ code: RPCCode) {
        observation?.end(code)
        observation = nil
    }
}

/// The RPC server metrics of a program: handshakes by outcome and reason, calls by method and
/// status, and call latency by method. Methods the router does not know are counted under
/// `unknown`, so a client cannot add series by inventing names.
public final class RPCMetrics: RPCServerObserver {
    public let handshakes = LabeledCounter(labels: ["outcome", "reason"])
    public let calls = LabeledCounter(labels: ["method", "code"])
    public let latency = LabeledHistogram(labels: ["method"])
    private let known: Mutex<Set<String>>

    /// `methods` get a series of their own; others are counted as `unknown`.
    public init(methods: some Sequence<String> = []) {
        known = Mutex(Set(methods))
    }

    /// Adds methods that get a series of their own (a router's `methodNames`, once registered).
    public func recognize(_ methods: some Sequence<String>) {
        known.withLock { $0.formUnion(methods) }
    }

    public func handshakeAccepted(resumed: Bool) {
        handshakes.add(1, "accepted", resumed ? "resumed" : "full")
    }

    public func handshakeRefused(_ error: any Error) {
        handshakes.add(1, "refused", Self.reason(error))
    }

    public func callEnded(method: String, code: RPCCode, seconds: Double) {
        let name = known.withLock { $0.contains(method) } ? method : "unknown"
        calls.add(1, name, code.description)
        latency.observe(seconds, name)
    }

    /// A refused handshake's reason, from a small fixed set (a label, so it must stay bounded).
    public static func reason(_ error: any Error) -> String {
        if let tls = error as? TLSError {
            let message = tls.message.lowercased()
            switch tls.code {
            case .peerCertificate:
                if message.contains("expired") { return "certificate_expired" }
                if message.contains("not yet valid") { return "certificate_not_yet_valid" }
                if message.contains("issuer") || message.contains("self-signed") || message.contains("self signed")
                    || message.contains("unknown ca") || message.contains("no verified certificate") {
                    return "unknown_ca"
                }
                return "certificate_rejected"
            case .identity: return "no_identity"
            case .unexpectedEOF: return "closed_by_peer"
            case .handshake:
                if message.contains("closed the connection") { return "closed_by_peer" }
                if message.contains("certificate") { return "certificate_rejected" }
                return "protocol"
            default: return "protocol"
            }
        }
        if let net = error as? NetError {
            switch net.code {
            case .timedOut: return "timeout"
            case .closed, .connectionReset: return "closed_by_peer"
            default: return "io"
            }
        }
        return "other"
    }
}
