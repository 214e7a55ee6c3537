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
    /// The blocked-stream clock (rpc.md §15 rule 18): time the sender has spent waiting for the
    /// peer's credit since the stream last made real progress. It restarts only once
    /// `progressFloor` bytes went out, so a peer that trickles a byte of credit now and then,
    /// or lets small messages through one at a time, cannot hold a stream forever.
    /// The wait in progress, if the sender is parked now.
    var parkedSince: MonotonicTime?
    /// Seconds of earlier waits since the last progress.
    var parkedBefore: Double = 0
    /// Bytes sent since the last progress.
    var progressBytes = 0
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
    /// Server: the call as its observer watches it (`RPCServerObserver`), until it ends.
    var observation: CallObservation?

    init(sendWindow: Int, maxMessageSize: Int) {
        self.sendWindow = sendWindow
        self.deframer = MessageDeframer(maxMessageSize: maxMessageSize)
    }

    var hasQueuedMessage: Bool { queueHead < queue.count }

    /// The sender has to wait for credit: the blocked clock runs.
    func markBlocked(now: MonotonicTime = .now()) {
        if parkedSince == nil { parkedSince = now }
    }

    /// The sender goes on (it got credit, or needs none now): the clock pauses.
    func unpark(now: MonotonicTime = .now()) {
        guard let since = parkedSince else { return }
        parkedBefore += now.seconds(since: since)
        parkedSince = nil
    }

    /// `count` bytes went out; after `progressFloor` bytes since the last progress the blocked
    /// clock starts again from zero.
    func noteSent(_ count: Int, progressFloor: Int, now: MonotonicTime = .now()) {
        unpark(now: now)
        progressBytes += count
        if progressBytes >= progressFloor {
            progressBytes = 0
            parkedBefore = 0
        }
    }

    /// Seconds spent waiting for credit since the last progress, the current wait included.
    func blockedSeconds(now: MonotonicTime) -> Double {
        parkedBefore + (parkedSince.map { now.seconds(since: $0) } ?? 0)
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
