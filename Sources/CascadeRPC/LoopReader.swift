import CascadeNet
import CascadeWire

/// Reads a loop-driven connection from readiness callbacks on its event loop's thread: the
/// frames of a read are handled inline, and only the calls they complete are resumed.
///
/// @unchecked Sendable: after `RPCConnection.run` hands it to the loop, every method runs on
/// that loop's single thread (readiness callbacks, end-of-turn work, or a task that prefers the
/// loop), one at a time, so the decoder and `done` are never touched concurrently.
final class LoopReader: @unchecked Sendable {
    private let connection: RPCConnection
    private let stream: any LoopDrivenStream
    private var decoder: FrameDecoder
    private var done: UnsafeContinuation<RPCError, Never>?
    private var readSize = LoopReader.smallReadSize
    static let smallReadSize = 16 * 1024
    static let bulkReadSize = 256 * 1024

    init(connection: RPCConnection, stream: any LoopDrivenStream, done: UnsafeContinuation<RPCError, Never>) {
        self.connection = connection
        self.stream = stream
        self.done = done
        self.decoder = FrameDecoder(maxFrameSize: connection.localSettings.maxFrameSize, expectPreface: true)
    }

    /// Reads until the socket is (very likely) empty, then asks to be called again. Bounded
    /// per turn so one busy connection does not starve the others on the loop.
    func readable(_ ready: Bool) {
        guard done != nil else { return }
        guard ready else { return finish(RPCError(.unavailable, "the connection was closed")) }
        for _ in 0..<16 {
            // A large frame in progress is read straight into its own payload array.
            if decoder.directReadCapacity > 0 {
                var outcome = ImmediateIO.wouldBlock(wantsWrite: false)
                _ = decoder.readDirectly { buffer in
                    outcome = stream.readNow(into: buffer)
                    if case .filled(let count, _) = outcome { return count }
                    return 0
                }
                switch outcome {
                case .filled(_, let drained):
                    if let reason = connection.consume([], &decoder) { return finish(reason) }
                    if drained { return again() }
                    continue
                case .wouldBlock(wantsWrite: false):
                    return again()
                default:
                    break  // the ordinary read below reports it
                }
            }
            switch stream.readNow(maxLength: readSize) {
            case .read(let bytes, let drained):
                // Small calls read into a small buffer; a full one means bulk data is flowing.
                readSize = bytes.count == readSize ? Self.bulkReadSize : Self.smallReadSize
                if let reason = connection.consume(bytes, &decoder) { return finish(reason) }
                if drained { return again() }
            case .wouldBlock(wantsWrite: false), .wrote, .filled:
                return again()
            case .wouldBlock(wantsWrite: true):
                // TLS must send before it can read on (rare): wait for room, then read again.
                Task(executorPreference: stream.loop) { [self] in
                    do {
                        try await stream.waitUntilWritable()
                        readable(true)
                    } catch {
                        readable(false)
                    }
                }
                return
            case .ended:
                return finish(RPCError(.unavailable, "the peer closed the connection"))
            case .failed(let error):
                return finish(RPCError(.unavailable, "the connection failed: \(error)"))
            }
        }
        // The read budget is spent. What OpenSSL already holds is invisible to epoll: come back
        // for it next turn rather than wait for the socket, which may stay quiet.
        if stream.hasBufferedInput {
            stream.loop.nextTurn { [self] in readable(true) }
        } else {
            again()
        }
    }

    private func again() {
        stream.whenReadable { [self] ready in readable(ready) }
    }

    private func finish(_ reason: RPCError) {
        let done = self.done
        self.done = nil
        done?.resume(returning: reason)
    }
}
