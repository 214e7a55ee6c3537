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

    init(stream: SSLStream, peer: PeerIdentity) {
        self.stream = stream
        self.peer = peer
    }

    public var socket: Socket { stream.socket }
    public var remoteAddress: SocketAddress? { stream.socket.remoteAddress }
    public var localAddress: SocketAddress? { stream.socket.localAddress }

    public func read(maxLength: Int) async throws -> [UInt8] {
        precondition(maxLength > 0, "read needs room for at least one byte")
        guard !reading.exchange(true, ordering: .acquiring) else {
            throw NetError(.concurrentUse, "two tasks read the same TLS connection at once")
        }
        defer { reading.store(false, ordering: .releasing) }
        while true {
            let (bytes, step) = stream.readAvailable(maxLength: maxLength)
            if !bytes.isEmpty { return bytes }
            switch step {
            case .done, .wantRead: try await stream.socket.wait(for: .readable)
            case .wantWrite: try await stream.socket.wait(for: .writable)
            case .closed: return []
            case .failed(let error): throw error
            }
        }
    }

    public func write(_ bytes: [UInt8]) async throws {
        guard !writing.exchange(true, ordering: .acquiring) else {
            throw NetError(.concurrentUse, "two tasks wrote the same TLS connection at once")
        }
        defer { writing.store(false, ordering: .releasing) }
        var offset = 0
        while offset < bytes.count {
            switch stream.writeSome(bytes, from: offset) {
            case .done(let count): offset += count
            case .wantWrite: try await stream.socket.wait(for: .writable)
            case .wantRead: try await stream.socket.wait(for: .readable)
            case .closed: throw NetError(.closed, "the peer closed the TLS connection")
            case .failed(let error): throw error
            }
        }
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

    /// Sends close_notify (best effort, without waiting for the peer's) and closes the socket.
    public func close() async {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if !stream.socket.closed, case .wantWrite = stream.shutdown() {
            // The send buffer is full; one short wait, then give up on a clean close.
            _ = try? await withTimeout(.seconds(1), on: stream.socket.loop, what: "close_notify") {
                try await self.stream.socket.wait(for: .writable)
                _ = self.stream.shutdown()
            }
        }
        stream.socket.close()
    }
}
