import COpenSSL
import Synchronization

/// An established, mutually authenticated TLS 1.3 connection.
public final class TLSConnection: ByteStream {
    let stream: SSLStream
    /// The peer, from its verified certificate.
    public let peer: PeerIdentity
    private let reading = Atomic<Bool>(false)
    private let writing = Atomic<Bool>(false)
    private let isClosed = Atomic<Bool>(false)
    /// The last read emptied the socket: the next one waits for readiness before reading.
    private let socketDrained = Atomic<Bool>(false)
    /// Set when a write stopped half way: OpenSSL then holds a partly sent record, and any
    /// later write would splice different bytes into it.
    private let writeBroken = Atomic<Bool>(false)

    /// The IP address SANs of the peer's verified certificate ("127.0.1.5"); often none.
    public let certificateIPs: [String]

    init(stream: SSLStream, peer: PeerIdentity, certificateIPs: [String] = []) {
        self.stream = stream
        self.peer = peer
        self.certificateIPs = certificateIPs
    }

    /// Where the verified peer connects from, as the server sees it.
    public var endpoint: PeerEndpoint { PeerEndpoint(address: remoteAddress, certificateIPs: certificateIPs) }

    public var socket: Socket { stream.socket }
    /// True when this connection resumed an earlier TLS session (a cheap reconnect).
    public var isResumed: Bool { stream.isResumed }
    public var remoteAddress: SocketAddress? { stream.socket.remoteAddress }
    public var localAddress: SocketAddress? { stream.socket.localAddress }

    public func read(maxLength: Int) async throws -> [UInt8] {
        precondition(maxLength > 0, "read needs room for at least one byte")
        guard !reading.exchange(true, ordering: .acquiring) else {
            throw NetError(.concurrentUse, "two tasks read the same TLS connection at once")
        }
        defer { reading.store(false, ordering: .releasing) }
        if socketDrained.load(ordering: .relaxed) && !stream.hasPending {
            try await stream.socket.wait(for: .readable)
        }
        while true {
            let (bytes, step, drained) = stream.readAvailable(maxLength: maxLength)
            socketDrained.store(drained, ordering: .relaxed)
            if !bytes.isEmpty { return bytes }
            switch step {
            case .done, .wantRead: try await stream.socket.wait(for: .readable)
            case .wantWrite: try await stream.socket.wait(for: .writable)
            case .closed: return []
            case .failed(let error): throw error
            }
        }
    }

    /// Bytes OpenSSL has decrypted or read ahead: a read needs no readiness wait first.
    public var hasBufferedInput: Bool { stream.hasPending }

    public func write(_ bytes: [UInt8]) async throws {
        guard !writing.exchange(true, ordering: .acquiring) else {
            throw NetError(.concurrentUse, "two tasks wrote the same TLS connection at once")
        }
        defer { writing.store(false, ordering: .releasing) }
        guard !writeBroken.load(ordering: .acquiring) else {
            throw NetError(.closed, "an earlier write on this TLS connection was interrupted; the connection cannot continue")
        }
        var offset = 0
        var finished = false
        defer { if !finished { writeBroken.store(true, ordering: .releasing) } }
        while offset < bytes.count {
            switch stream.writeSome(bytes, from: offset) {
            case .done(let count): offset += count
            case .wantWrite: try await stream.socket.wait(for: .writable)
            case .wantRead: try await stream.socket.wait(for: .readable)
            case .closed: throw NetError(.closed, "the peer closed the TLS connection")
            case .failed(let error): throw error
            }
        }
        finished = true
    }

    /// Sends close_notify, ending our direction; reading goes on until the peer's close_notify
    /// (TLS 1.3 allows this half-close).
    public func finishWriting() async throws {
        while true {
            switch stream.shutdown() {
            case .done, .closed: return
            case .wantWrite: try await stream.socket.wait(for: .writable)
            case .wantRead: try await stream.socket.wait(for: .readable)
            case .failed(let error): throw error
            }
        }
    }

    /// Sends close_notify and closes the socket — gracefully: after our FIN it reads and
    /// discards what the peer still sends (at most `lingerBytes`, for at most `linger`) until
    /// the peer closes too. Closing a socket with unread input (such as TLS 1.3 session
    /// tickets) makes the kernel send RST, which destroys data the peer has not read yet.
    public func close() async {
        await close(linger: .seconds(2))
    }

    public func close(linger: Duration, lingerBytes: Int = 1 << 20) async {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let socket = stream.socket
        guard !socket.closed else { return }
        _ = try? await withTimeout(linger, on: socket.loop, what: "closing the TLS connection") { [stream] in
            while case .wantWrite = stream.shutdown() {
                try await socket.wait(for: .writable)
            }
            socket.shutdownWrite()
            var discarded = 0
            while discarded < lingerBytes {
                let bytes = try await socket.read(maxLength: 64 * 1024)
                if bytes.isEmpty { break }
                discarded += bytes.count
            }
        }
        socket.close()
    }
}

extension TLSConnection: LoopDrivenStream {
    public var loop: EventLoop { stream.socket.loop }

    public func readNow(maxLength: Int) -> ImmediateIO {
        precondition(maxLength > 0, "read needs room for at least one byte")
        guard !reading.exchange(true, ordering: .acquiring) else {
            return .failed(NetError(.concurrentUse, "two readers on the same TLS connection at once"))
        }
        defer { reading.store(false, ordering: .releasing) }
        if stream.socket.closed { return .failed(NetError(.closed, "the socket was closed")) }
        let (bytes, step, drained) = stream.readAvailable(maxLength: maxLength)
        // A short record with nothing buffered behind it: the caller re-arms for readiness
        // rather than probing the socket for an EAGAIN (the one-shot re-arm reports data that
        // is already there).
        if !bytes.isEmpty { return .read(bytes, drained: drained) }
        switch step {
        case .done, .wantRead: return .wouldBlock(wantsWrite: false)
        case .wantWrite: return .wouldBlock(wantsWrite: true)
        case .closed: return .ended
        case .failed(let error): return .failed(error)
        }
    }

    public func readNow(into buffer: UnsafeMutableRawBufferPointer) -> ImmediateIO {
        guard !buffer.isEmpty else { return .filled(0, drained: false) }
        guard !reading.exchange(true, ordering: .acquiring) else {
            return .failed(NetError(.concurrentUse, "two readers on the same TLS connection at once"))
        }
        defer { reading.store(false, ordering: .releasing) }
        if stream.socket.closed { return .failed(NetError(.closed, "the socket was closed")) }
        let (count, step, drained) = stream.readAvailable(into: buffer)
        if count > 0 { return .filled(count, drained: drained) }
        switch step {
        case .done, .wantRead: return .wouldBlock(wantsWrite: false)
        case .wantWrite: return .wouldBlock(wantsWrite: true)
        case .closed: return .ended
        case .failed(let error): return .failed(error)
        }
    }

    public func writeNow(_ bytes: [UInt8], from offset: Int) -> ImmediateIO {
        guard !writing.exchange(true, ordering: .acquiring) else {
            return .failed(NetError(.concurrentUse, "two writers on the same TLS connection at once"))
        }
        defer { writing.store(false, ordering: .releasing) }
        guard !writeBroken.load(ordering: .acquiring) else {
            return .failed(NetError(.closed, "an earlier write on this TLS connection was interrupted; the connection cannot continue"))
        }
        var written = offset
        while written < bytes.count {
            switch stream.writeSome(bytes, from: written) {
            case .done(let count): written += count
            // OpenSSL keeps the unsent part of a record and expects the same bytes again: the
            // async `write` of the rest (from `written`) retries it exactly.
            case .wantWrite: return .wrote(written - offset)
            case .wantRead: return written > offset ? .wrote(written - offset) : .wouldBlock(wantsWrite: false)
            case .closed:
                writeBroken.store(true, ordering: .releasing)
                return .failed(NetError(.closed, "the peer closed the TLS connection"))
            case .failed(let error):
                writeBroken.store(true, ordering: .releasing)
                return .failed(error)
            }
        }
        return .wrote(written - offset)
    }

    public func waitUntilWritable() async throws {
        try await stream.socket.wait(for: .writable)
    }

    public func whenReadable(_ callback: @escaping ReadinessCallback) {
        stream.socket.loop.whenReadable(token: stream.socket.token, callback)
    }
}
