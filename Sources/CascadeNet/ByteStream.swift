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

/// What a non-blocking read or write on the loop thread achieved.
public enum ImmediateIO: Sendable {
    /// Bytes read (never empty); `drained` when the socket very likely has nothing more, so
    /// the reader should wait for readiness rather than read again.
    case read([UInt8], drained: Bool)
    /// Bytes read into the caller's buffer (`readNow(into:)`), at least one.
    case filled(Int, drained: Bool)
    /// The count of bytes written.
    case wrote(Int)
    /// Nothing more now: wait for readiness (`wantsWrite` when TLS needs to send first).
    case wouldBlock(wantsWrite: Bool)
    /// The peer finished cleanly (reads only).
    case ended
    case failed(any Error)
}

/// A byte stream that can be driven from its event loop's thread without tasks: reads run in
/// a readiness callback and writes go out at the end of the loop's turn. On a small call this
/// saves the task hand-offs that make up most of its latency. All methods must be called on
/// `loop`'s thread, except where noted.
public protocol LoopDrivenStream: ByteStream {
    var loop: EventLoop { get }
    /// Reads what is available now, up to `maxLength` bytes, without waiting.
    func readNow(maxLength: Int) -> ImmediateIO
    /// Reads what is available now straight into `buffer`, without waiting.
    func readNow(into buffer: UnsafeMutableRawBufferPointer) -> ImmediateIO
    /// Writes as much of `bytes[offset...]` as the socket takes now, without waiting. Never
    /// concurrently with `write`.
    func writeNow(_ bytes: [UInt8], from offset: Int) -> ImmediateIO
    /// Calls `callback` on the loop thread when a read may make progress (`true`), or when it
    /// never will (`false`: the stream was closed). One-shot. Callable from any thread.
    func whenReadable(_ callback: @escaping ReadinessCallback)
    /// Bytes already read from the socket and held in user space (OpenSSL's read-ahead): epoll
    /// will not report them, so a reader that stops early must come back for them.
    var hasBufferedInput: Bool { get }
    /// Waits until the socket can take more bytes (TLS may need to send before it can read).
    func waitUntilWritable() async throws
}
