import COpenSSL
import CCascadeShims
import CascadeCrypto
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Owns an `SSL*`; freed when the stream goes away.
struct SSLHandle: ~Copyable {
    let pointer: OpaquePointer
    /// The read-ahead buffer is the large one (bulk data is flowing).
    var bulkReads = false
    /// Short reads in a row while in bulk mode; a few in a row mean the bulk is over.
    var shortReads = 0

    deinit {
        SSL_free(pointer)
    }
}

/// The outcome of one non-blocking OpenSSL call.
enum SSLStep {
    case done(Int)
    case wantRead
    case wantWrite
    /// The peer sent close_notify.
    case closed
    case failed(TLSError)
}

/// An `SSL*` over a non-blocking socket. Every OpenSSL call on it holds the lock, so one
/// reader and one writer may use it from different threads at once.
final class SSLStream: Sendable {
    let socket: Socket
    private let handle: Mutex<SSLHandle>
    /// Kept alive as long as the SSL*, whose app data points at it.
    let notes: ConnectionNotes

    init(socket: Socket, ssl: sending OpaquePointer, notes: ConnectionNotes) {
        self.socket = socket
        self.handle = Mutex(SSLHandle(pointer: ssl))
        self.notes = notes
    }

    /// True when the handshake resumed an earlier session (no certificate exchange).
    var isResumed: Bool {
        handle.withLock { SSL_session_reused($0.pointer) == 1 }
    }

    /// Runs one OpenSSL call (returning OpenSSL's usual int) and classifies the result.
    func step(_ call: (OpaquePointer) -> Int32) -> SSLStep {
        handle.withLock { handle in
            // The error queue is per thread and tasks move between threads: start clean.
            Self.clearErrorQueue()
            let result = call(handle.pointer)
            if result > 0 { return .done(Int(result)) }
            return Self.classify(handle.pointer, result: result)
        }
    }

    /// Reads as many decrypted bytes as are available now, up to `maxLength`. `drained` says
    /// the socket is very likely empty, so the next read should wait for readiness first
    /// instead of paying for a recv that fails with EAGAIN (two of them per small call).
    func readAvailable(maxLength: Int) -> (bytes: [UInt8], step: SSLStep, drained: Bool) {
        handle.withLock { handle in
            var outcome = (count: 0, step: SSLStep.wantRead, drained: false)
            let bytes = [UInt8](unsafeUninitializedCapacity: maxLength) { buffer, count in
                outcome = Self.read(&handle, into: UnsafeMutableRawPointer(buffer.baseAddress!), length: maxLength)
                count = outcome.count
            }
            return (bytes, outcome.step, outcome.drained)
        }
    }

    /// Like `readAvailable(maxLength:)`, into the caller's memory (a frame being assembled).
    func readAvailable(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, step: SSLStep, drained: Bool) {
        // The caller's memory, written only during this call, on this thread; passed into the
        // lock as a plain address so the SSL handle's isolation region stays its own.
        let address = UInt(bitPattern: buffer.baseAddress)
        let length = buffer.count
        return handle.withLock { handle in
            Self.read(&handle, into: UnsafeMutableRawPointer(bitPattern: address)!, length: length)
        }
    }

    /// SSL_read_ex until `length` bytes, the socket runs dry or an error (lock held).
    private static func read(_ handle: inout SSLHandle, into base: UnsafeMutableRawPointer, length: Int) -> (count: Int, step: SSLStep, drained: Bool) {
        var last = SSLStep.wantRead
        var drained = false
        var count = 0
        while count < length {
            clearErrorQueue()
            var got = 0
            let result = SSL_read_ex(handle.pointer, base + count, length - count, &got)
            if result == 1 {
                count += got
                // A record shorter than the maximum with nothing buffered behind it: the peer
                // has paused, so stop here rather than probe the socket.
                if got < 16384 && SSL_has_pending(handle.pointer) == 0 {
                    drained = true
                    break
                }
                continue
            }
            last = classify(handle.pointer, result: result)
            if case .wantRead = last { drained = true }
            break
        }
        sizeReadBuffer(&handle, filled: count == length && length >= 64 * 1024, short: count < 16384)
        return (count, last, drained)
    }

    /// The read-ahead buffer while bulk data flows: one recv takes many records.
    static let bulkReadBuffer = 256 * 1024

    /// Bulk reads get a large read-ahead buffer; small calls go back to OpenSSL's default.
    /// The buffer is allocated per read (SSL_MODE_RELEASE_BUFFERS keeps idle connections
    /// small), and freeing a block of 64 KiB or more makes glibc consolidate its fast bins,
    /// which costs every small call that follows; so small traffic uses a small buffer.
    private static func sizeReadBuffer(_ handle: inout SSLHandle, filled: Bool, short: Bool) {
        if !short { handle.shortReads = 0 }
        if filled && !handle.bulkReads {
            handle.bulkReads = true
            SSL_set_default_read_buffer_len(handle.pointer, bulkReadBuffer)
        } else if short && handle.bulkReads {
            // A bulk sender outpaced now and then by its receiver leaves a short read or two;
            // only a run of them means the traffic turned small.
            handle.shortReads += 1
            guard handle.shortReads >= 8 else { return }
            handle.bulkReads = false
            handle.shortReads = 0
            SSL_set_default_read_buffer_len(handle.pointer, 0)
        }
    }

    /// True when OpenSSL holds bytes it has not handed out yet (a record, or read-ahead).
    var hasPending: Bool {
        handle.withLock { SSL_has_pending($0.pointer) == 1 }
    }

    /// Encrypts and sends as much of `bytes[offset...]` as the socket takes now.
    func writeSome(_ bytes: [UInt8], from offset: Int) -> SSLStep {
        handle.withLock { handle in
            Self.clearErrorQueue()
            var written = 0
            let result = bytes.withUnsafeBytes { raw in
                SSL_write_ex(handle.pointer, raw.baseAddress! + offset, raw.count - offset, &written)
            }
            if result == 1 { return .done(written) }
            return Self.classify(handle.pointer, result: result)
        }
    }

    /// The identity and IP address SANs in the peer's verified certificate.
    func verifiedPeer(what: String) throws(TLSError) -> (identity: PeerIdentity, ipAddresses: [String]) {
        let result = handle.withLock { handle -> Result<(PeerIdentity, [String]), TLSError> in
            guard SSL_get_verify_result(handle.pointer) == X509_V_OK,
                  let certificate = SSL_get1_peer_certificate(handle.pointer)
            else { return .failure(TLSError(.peerCertificate, "\(what): the peer presented no verified certificate")) }
            defer { X509_free(certificate) }
            return Result { () throws(TLSError) in
                (try CertificateIdentity.peerIdentity(of: certificate), CertificateIdentity.ipAddresses(of: certificate))
            }
        }
        return try result.get()
    }

    /// SSL_get_error reads the thread's error queue, so it must be empty before each call.
    /// Peeking first skips ERR_clear_error's walk over all sixteen slots when it already is,
    /// as it nearly always is (every failure below drains it).
    private static func clearErrorQueue() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    private static func classify(_ ssl: OpaquePointer, result: Int32) -> SSLStep {
        let code = SSL_get_error(ssl, result)
        switch code {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let saved = errno
            let queued = OpenSSLErrors.drain()
            if saved == 0 && queued.isEmpty {
                return .failed(TLSError(.unexpectedEOF, "the peer closed the connection without a TLS close_notify"))
            }
            let reason = queued.isEmpty ? String(cString: strerror(saved)) : queued
            return .failed(TLSError(.protocolError, "socket error: \(reason)"))
        default:
            let verify = SSL_get_verify_result(ssl)
            let (queued, alert) = drainErrors()
            let notes = ConnectionNotes.of(ssl)
            if verify != X509_V_OK, let notes, let failure = notes.verifyFailure.withLock({ $0 }) {
                return .failed(TLSDiagnosis.refusedPeer(failure, notes: notes, openSSL: queued))
            }
            if verify != X509_V_OK {
                let reason = String(cString: X509_verify_cert_error_string(verify))
                return .failed(TLSError(.peerCertificate, "the peer's certificate was rejected: \(reason)", reason: .badCertificate))
            }
            if let alert, let notes {
                let local = SSL_get_certificate(ssl).map(CertificateSummary.init)
                return .failed(TLSDiagnosis.refusedByPeer(alert: alert, local: local, notes: notes, openSSL: queued))
            }
            if queued.contains("unexpected eof") {
                return .failed(TLSError(.unexpectedEOF, "the peer closed the connection without a TLS close_notify"))
            }
            return .failed(handshakeError(queued, code: code, side: notes?.side))
        }
    }

    /// Empties the thread's error queue: its text, and the alert the peer sent if one is there.
    private static func drainErrors() -> (text: String, alert: UInt8?) {
        var parts: [String] = []
        var alert: UInt8?
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            let received = cascade_SSL_alert_received(code)
            if received >= 0 && alert == nil { alert = UInt8(received) }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            parts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return (parts.joined(separator: "; "), alert)
    }

    /// A handshake this side could not complete for a reason other than a certificate.
    private static func handshakeError(_ queued: String, code: Int32, side: TLSContext.Side?) -> TLSError {
        let peer = side.map(TLSDiagnosis.peer(of:)) ?? "the peer"
        let (reason, text): (TLSError.Reason, String)
        if queued.contains("peer did not return a certificate") {
            (reason, text) = (.noCertificate, "\(peer) sent no certificate; every Cascade peer presents one from the fleet CA")
        } else if queued.contains("unsupported protocol") || queued.contains("wrong version number") {
            (reason, text) = (.protocolVersion, "\(peer) does not speak TLS 1.3, the only version Cascade accepts")
        } else if queued.contains("no shared cipher") || queued.contains("no suitable key share") || queued.contains("no shared groups") {
            (reason, text) = (.noSharedParameters, "\(peer) offers no TLS 1.3 cipher suite or group Cascade accepts (\(TLSContext.cipherSuites); \(TLSContext.groups))")
        } else {
            (reason, text) = (.other, queued.isEmpty ? "TLS error \(code)" : "the handshake failed")
        }
        return TLSError(.handshake, queued.isEmpty ? text : "\(text) (OpenSSL: \(queued))", reason: reason)
    }

    /// Sends close_notify once; does not wait for the peer's.
    func shutdown() -> SSLStep {
        handle.withLock { handle in
            ERR_clear_error()
            let result = SSL_shutdown(handle.pointer)
            if result >= 0 { return .done(0) }
            return Self.classify(handle.pointer, result: result)
        }
    }
}

