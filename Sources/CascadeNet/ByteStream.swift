/// An ordered, reliable, bidirectional byte stream: a TLS connection, a plain TCP socket,
/// or an in-memory pipe in tests. At most one task reads and one task writes at a time.
public protocol ByteStream: Sendable {
    /// Returns between 1 and `maxLength` bytes, waiting for them; an empty array means the
    /// peer finished cleanly.
    func read(maxLength: Int) async throws -> [UInt8]
    /// Writes all of `bytes`; suspends while the transport cannot take more (back-pressure).
    func write(_ bytes: [UInt8]) async throws
    /// Finishes the stream (TLS close_notify) and releases the socket. Idempotent.
    func close() async
}

/// A plain TCP connection as a `ByteStream` (for tests and benchmarks; production is TLS).
public final class TCPConnection: ByteStream {
    public let socket: Socket

    public init(socket: Socket) {
        self.socket = socket
    }

    public func read(maxLength: Int) async throws -> [UInt8] {
        try await socket.read(maxLength: maxLength)
    }

    public func write(_ bytes: [UInt8]) async throws {
        try await socket.write(bytes)
    }

    public func close() async {
        socket.close()
    }
}
