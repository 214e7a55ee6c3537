import CascadeNet

/// One call's state inside a connection (guarded by the connection's lock).
struct StreamState {
    var sendWindow: Int
    /// Bytes received and not yet credited back with WINDOW_UPDATE.
    var receiveUncredited = 0
    var queue: [ArraySlice<UInt8>] = []
    var queueHead = 0
    var queuedBytes = 0
    var deframer: MessageDeframer
    var receiver: UnsafeContinuation<ArraySlice<UInt8>?, any Error>?
    var windowWaiter: UnsafeContinuation<Int, any Error>?
    /// When the sender began waiting for the peer's window (zero-window detection).
    var windowBlockedSince: MonotonicTime?
    /// The peer finished its side (END_STREAM from a client, TRAILERS from a server).
    var remoteEnded = false
    var localEnded = false
    var trailers: CallTrailers?
    var responseHead: ResponseHead?
    var failure: RPCError?
    /// The server's handler, cancelled on RESET or deadline.
    var handler: Task<Void, Never>?
    var deadlineTimer: TimerHandle?
    var trailersSent = false

    init(sendWindow: Int, maxMessageSize: Int) {
        self.sendWindow = sendWindow
        self.deframer = MessageDeframer(maxMessageSize: maxMessageSize)
    }

    var hasQueuedMessage: Bool { queueHead < queue.count }

    mutating func popMessage() -> ArraySlice<UInt8> {
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
    var actions: [() -> Void] = []

    mutating func callAsFunction(_ action: @escaping () -> Void) {
        actions.append(action)
    }

    func run() {
        for action in actions { action() }
    }
}
