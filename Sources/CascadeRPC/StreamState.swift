import CascadeNet

/// One call's state inside a connection. A class so the dictionary holds a reference and
/// every frame does not copy the whole record in and out.
/// @unchecked Sendable: every access happens under the owning connection's lock (it lives
/// only in `ConnectionState.streams`), which serialises all reads and writes.
final class StreamState: @unchecked Sendable {
    var sendWindow: Int
    /// Bytes received and not yet credited back with WINDOW_UPDATE.
    var receiveUncredited = 0
    var queue: [ArraySlice<UInt8>] = []
    var queueHead = 0
    var queuedBytes = 0
    var deframer: MessageDeframer
    var receiver: UnsafeContinuation<ArraySlice<UInt8>?, any Error>?
    /// A unary client call waiting for its whole outcome (response and trailers) at once.
    var unaryWaiter: UnsafeContinuation<ArraySlice<UInt8>, any Error>?
    /// The method of a unary client call, for its error messages.
    var unaryMethod: String?
    var windowWaiter: UnsafeContinuation<Int, any Error>?
    /// When the sender began waiting for the peer's window (zero-window detection).
    var windowBlockedSince: MonotonicTime?
    /// Bytes sent since `windowBlockedSince`: the clock restarts only after real progress, so a
    /// peer that trickles a byte of credit now and then cannot hold a stream forever.
    var blockedProgress = 0
    /// The peer finished its side (END_STREAM from a client, TRAILERS from a server).
    var remoteEnded = false
    var localEnded = false
    var trailers: CallTrailers?
    var responseHead: ResponseHead?
    var failure: RPCError?
    /// The server's handler, cancelled on RESET or deadline.
    var handler: Task<Void, Never>?
    /// Server: an immediate unary handler waiting for its request to complete.
    var immediate: ImmediateCall?
    var deadlineTimer: TimerHandle?
    var trailersSent = false

    init(sendWindow: Int, maxMessageSize: Int) {
        self.sendWindow = sendWindow
        self.deframer = MessageDeframer(maxMessageSize: maxMessageSize)
    }

    var hasQueuedMessage: Bool { queueHead < queue.count }

    /// The sender has to wait for credit: start the blocked clock unless it runs already.
    func markBlocked(now: MonotonicTime = .now()) {
        guard windowBlockedSince == nil else { return }
        windowBlockedSince = now
        blockedProgress = 0
    }

    /// `count` bytes went out. The blocked clock stops once the write is done or the stream
    /// has sent `progressFloor` bytes since it started (rpc.md §15, blocked streams).
    func noteSent(_ count: Int, finished: Bool, progressFloor: Int) {
        guard windowBlockedSince != nil else { return }
        blockedProgress += count
        if finished || blockedProgress >= progressFloor {
            windowBlockedSince = nil
            blockedProgress = 0
        }
    }

    func popMessage() -> ArraySlice<UInt8> {
        let message = queue[queueHead]
        queue[queueHead] = []
        queueHead += 1
        if queueHead > 64 && queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        queuedBytes -= message.count + MessageFraming.prefixSize
        return message
    }
}

/// Work decided under the lock and done after it is released.
struct Effects {
    // Most frames cause one effect (a waiter resumed): it is kept out of the array, which is
    // then never allocated.
    private var first: (() -> Void)?
    private var rest: [() -> Void] = []

    mutating func callAsFunction(_ action: @escaping () -> Void) {
        if first == nil { first = action } else { rest.append(action) }
    }

    func run() {
        first?()
        for action in rest { action() }
    }
}

/// A unary call bound for an immediate handler (RPCRouter.unaryImmediate), until its request
/// message has arrived.
struct ImmediateCall {
    let run: @Sendable (ArraySlice<UInt8>, ServerContext) throws -> [UInt8]
    let context: ServerContext
}
