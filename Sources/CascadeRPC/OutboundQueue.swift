import CascadeNet
import Synchronization

/// Frames waiting to be written. Control frames never wait; DATA waits while more than
/// `highWater` bytes are queued, so a slow socket pushes back on the senders.
///
/// Two ways out. On a loop-driven transport, what a turn of the event loop queues is written
/// at the end of that turn, on the loop thread, in one TLS write (`flush`); only when the
/// socket is full does the writer task take over and wait for it. On other transports the
/// writer task drains the queue in batches.
final class OutboundQueue: Sendable {
    struct State {
        var buffer: [UInt8] = []
        /// The writer task, parked while nothing is being written. Whoever writes takes it
        /// (the task itself, or a flush), so there is never more than one writer.
        var writer: UnsafeContinuation<[UInt8]?, Never>?
        var spaceWaiters: [UnsafeContinuation<Void, any Error>] = []
        var closed: RPCError?
        /// When the batch being written was handed out (nil while nothing is being written).
        var writingSince: MonotonicTime?
        var flushScheduled = false
        var writeFailure: (any Error)?
        /// A written batch's storage, kept for the next frames (no allocation per call).
        var spare: [UInt8] = []

        /// Room for new frames: the spare storage when the buffer was just handed out.
        mutating func prepareBuffer() {
            guard buffer.capacity == 0 else { return }
            if spare.capacity > 0 { swap(&buffer, &spare) } else { buffer.reserveCapacity(1024) }
        }
    }

    let highWater: Int
    /// Set when the transport can be written from its loop thread: writes then go out in
    /// `flush`, at the end of the loop's turn.
    private let direct: (any LoopDrivenStream)?
    private let state = Mutex(State())

    init(highWater: Int = 1 << 20, direct: (any LoopDrivenStream)? = nil) {
        self.highWater = highWater
        self.direct = direct
    }

    /// Why a flush failed; the writer task reports it when it ends.
    var writeFailure: (any Error)? { state.withLock { $0.writeFailure } }

    private func scheduleFlush() {
        guard let direct else { return }
        direct.loop.beforeNextPoll { self.flush(to: direct) }
    }

    var queuedBytes: Int { state.withLock { $0.buffer.count } }

    /// How long the current write has been blocked, in seconds (0 when not writing).
    func writeBlockedSeconds(now: MonotonicTime) -> Double {
        state.withLock { $0.writingSince.map { now.seconds(since: $0) } ?? 0 }
    }

    /// Appends encoded frame bytes; never waits. Dropped after `close`.
    func enqueue(_ append: (inout [UInt8]) -> Void) {
        enum Next { case none, flush, hand(UnsafeContinuation<[UInt8]?, Never>, [UInt8]) }
        let next = state.withLock { state -> Next in
            guard state.closed == nil else { return .none }
            state.prepareBuffer()
            append(&state.buffer)
            guard let writer = state.writer else { return .none }
            if direct != nil {
                if state.flushScheduled { return .none }
                state.flushScheduled = true
                return .flush
            }
            state.writer = nil
            state.writingSince = .now()
            let batch = state.buffer
            state.buffer = []
            return .hand(writer, batch)
        }
        switch next {
        case .none: break
        case .flush: scheduleFlush()
        case .hand(let writer, let batch): writer.resume(returning: batch)
        }
    }

    /// Queues already-encoded frames; when nothing is waiting, the array itself becomes the
    /// queue (a large streamed message is not copied again).
    func enqueue(adopting frames: [UInt8]) {
        enqueue { out in
            if out.isEmpty { out = frames } else { out.append(contentsOf: frames) }
        }
    }

    /// Writes what is queued now, on the loop thread. What the socket does not take goes to
    /// the writer task, which waits for the socket; a failed write ends the writer.
    private func flush(to stream: any LoopDrivenStream) {
        var taken = state.withLock { state -> (UnsafeContinuation<[UInt8]?, Never>, [UInt8])? in
            state.flushScheduled = false
            guard let writer = state.writer, !state.buffer.isEmpty else { return nil }
            state.writer = nil
            state.writingSince = .now()
            let batch = state.buffer
            state.buffer = []
            return (writer, batch)
        }
        while let (writer, pending) = taken {
            var batch = pending
            switch stream.writeNow(batch, from: 0) {
            case .wrote(let count) where count == batch.count:
                var waiters: [UnsafeContinuation<Void, any Error>] = []
                var finished = false
                if batch.capacity <= 64 * 1024 { batch.removeAll(keepingCapacity: true) } else { batch = [] }
                taken = state.withLock { state -> (UnsafeContinuation<[UInt8]?, Never>, [UInt8])? in
                    if state.spare.capacity == 0 { swap(&state.spare, &batch) }
                    if !state.buffer.isEmpty {
                        let more = state.buffer
                        state.buffer = []
                        return (writer, more)
                    }
                    state.writingSince = nil
                    swap(&waiters, &state.spaceWaiters)
                    // Closed while we wrote: the writer ends (and closes the transport).
                    if state.closed != nil { finished = true } else { state.writer = writer }
                    return nil
                }
                for waiter in waiters { waiter.resume() }
                if finished { writer.resume(returning: nil) }
            case .wrote(let count):
                writer.resume(returning: Array(batch[count...]))
                return
            case .wouldBlock, .read, .filled, .ended:
                writer.resume(returning: batch)
                return
            case .failed(let error):
                state.withLock { state in
                    state.writeFailure = error
                    state.writingSince = nil
                }
                writer.resume(returning: nil)
                return
            }
        }
    }

    /// Suspends while the queue is over its high-water mark.
    func waitForSpace() async throws {
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            let ready = state.withLock { state -> Result<Bool, RPCError> in
                if let closed = state.closed { return .failure(closed) }
                if state.buffer.count <= highWater { return .success(true) }
                state.spaceWaiters.append(continuation)
                return .success(false)
            }
            switch ready {
            case .success(true): continuation.resume()
            case .success(false): break
            case .failure(let error): continuation.resume(throwing: error)
            }
        }
    }

    /// The writer task's next batch; nil once closed and empty. With a flusher, bytes queued
    /// while the task was writing are flushed on the loop instead of handed back here.
    func nextBatch() async -> [UInt8]? {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<[UInt8]?, Never>) in
            var flush = false
            let (batch, waiters) = state.withLock { state -> ([UInt8]??, [UnsafeContinuation<Void, any Error>]) in
                let waiters = state.spaceWaiters
                state.spaceWaiters = []
                state.writingSince = nil
                if !state.buffer.isEmpty && direct == nil {
                    state.writingSince = .now()
                    let batch = state.buffer
                    state.buffer = []
                    return (.some(batch), waiters)
                }
                if (state.closed != nil && state.buffer.isEmpty) || state.writeFailure != nil { return (.some(nil), waiters) }
                state.writer = continuation
                if !state.buffer.isEmpty && !state.flushScheduled {
                    state.flushScheduled = true
                    flush = true
                }
                return (nil, waiters)
            }
            for waiter in waiters { waiter.resume() }
            if let batch { continuation.resume(returning: batch) }
            if flush { scheduleFlush() }
        }
    }

    /// Stops accepting frames; what is queued is still written. Fails waiting senders.
    func close(_ error: RPCError) {
        let (writer, waiters) = state.withLock { state -> (UnsafeContinuation<[UInt8]?, Never>?, [UnsafeContinuation<Void, any Error>]) in
            if state.closed == nil { state.closed = error }
            let writer = state.buffer.isEmpty ? state.writer : nil
            if writer != nil { state.writer = nil }
            let waiters = state.spaceWaiters
            state.spaceWaiters = []
            return (writer, waiters)
        }
        writer?.resume(returning: nil)
        for waiter in waiters { waiter.resume(throwing: error) }
    }
}
