import COpenSSL
import Synchronization

/// Owns one reference to an `SSL_SESSION`.
///
/// `@unchecked Sendable`: a session is reference counted and not changed after OpenSSL hands
/// it to us; `SSL_set_session` only takes another reference, which OpenSSL does atomically.
final class SessionBox: @unchecked Sendable {
    let pointer: OpaquePointer

    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        SSL_SESSION_free(pointer)
    }
}

/// The latest resumable session per server address (client side).
final class SessionStore: Sendable {
    private let sessions = Mutex<[String: SessionBox]>([:])

    func store(_ session: SessionBox, for key: String) {
        sessions.withLock { $0[key] = session }
    }

    func withSession(for key: String, _ body: (OpaquePointer) -> Void) {
        guard let box = sessions.withLock({ $0[key] }) else { return }
        body(box.pointer)
    }

    var count: Int { sessions.withLock { $0.count } }
}

/// Where OpenSSL's new-session callback puts a session for one connection.
final class SessionSink: Sendable {
    let key: String
    let store: SessionStore

    init(key: String, store: SessionStore) {
        self.key = key
        self.store = store
    }
}

/// OpenSSL calls this when a server's ticket gives the client a resumable session.
/// We keep a copy: OpenSSL marks the connection's own session not resumable when that
/// connection dies with an error — exactly what happens when the server is killed — and a
/// shared session would then be useless for the reconnect it exists for.
let newSessionCallback: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32 = { ssl, session in
    guard let session, let sink = ConnectionNotes.of(ssl)?.session else { return 0 }
    if let copy = SSL_SESSION_dup(session) {
        sink.store.store(SessionBox(taking: copy), for: sink.key)
        return 0  // OpenSSL keeps (and frees) its own reference.
    }
    sink.store.store(SessionBox(taking: session), for: sink.key)
    return 1
}

import CCascadeShims
