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
    /// Small reads land here and are appended to the decoder's buffer, which keeps its
    /// storage: a call then costs no allocation for its bytes (a fresh 16 KiB array per read
    /// did). Bulk reads still get an array of their own, which the decoder adopts uncopied.
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: LoopReader.smallReadSize, alignment: 16)

    init(connection: RPCConnection, stream: any LoopDrivenStream, done: UnsafeContinuation<RPCError, Never>) {
        self.connection = connection
        self.stream = stream
        self.done = done
        self.decoder = FrameDecoder(maxFrameSize: connection.localSettings.maxFrameSize, expectPreface: true)
    }

    deinit {
        scratch.deallocate()
    }

    /// Reads until the socket is (very likely) empty, then asks to be called again. Bounded
    /// per turn so one busy connection does not starve the others on the loop.
    func readable(_ ready: Bool) {
        guard done != nil else { return }
        guard ready else { return finish(RPCError(.unavailable, "the connection was closed")) }
        for _ in 0..<16 {
            let outcome: ImmediateIO
            if decoder.directReadCapacity > 0 {
                // A large frame in progress is read straight into its own payload array.
                var direct = ImmediateIO.wouldBlock(wantsWrite: false)
                _ = decoder.readDirectly { buffer in
                    direct = stream.readNow(into: buffer)
                    if case .filled(let count, _) = direct { return count }
                    return 0
                }
                outcome = direct
            } else if readSize == Self.smallReadSize {
                outcome = stream.readNow(into: scratch)
                if case .filled(let count, _) = outcome {
                    // A full buffer means bulk data is flowing.
                    if count == scratch.count { readSize = Self.bulkReadSize }
                    decoder.feed(UnsafeRawBufferPointer(rebasing: scratch[..<count]))
                }
            } else {
                outcome = stream.readNow(maxLength: readSize)
                if case .read(let bytes, _) = outcome {
                    // Back to the small buffer once reads stop coming back full.
                    if bytes.count < readSize { readSize = Self.smallReadSize }
                    decoder.feed(bytes)
                }
            }
            switch outcome {
            case .filled(_, let drained), .read(_, let drained):
                if let reason = connection.consume(&decoder) { return finish(reason) }
                if drained { return again() }
            case .wouldBlock(wantsWrite: false), .wrote:
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
                return finish(RPCError.connectionFailed("the connection failed: ", error))
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
