import CascadeNet
import Synchronization

/// Frames waiting to be written, drained by one writer task in large batches (so many small
/// frames cost one TLS write). Control frames never wait; DATA waits while more than
/// `highWater` bytes are queued, so a slow socket pushes back on the senders.
final class OutboundQueue: Sendable {
    struct State {
        var buffer: [UInt8] = []
        var writer: UnsafeContinuation<[UInt8]?, Never>?
        var spaceWaiters: [UnsafeContinuation<Void, any Error>] = []
        var closed: RPCError?
        /// When the batch being written was handed to the writer (nil while it waits).
        var writingSince: MonotonicTime?
    }

    let highWater: Int
    private let state = Mutex(State())

    init(highWater: Int = 1 << 20) {
        self.highWater = highWater
    }

    var queuedBytes: Int { state.withLock { $0.buffer.count } }

    /// How long the current write has been blocked, in seconds (0 when not writing).
    func writeBlockedSeconds(now: MonotonicTime) -> Double {
        state.withLock { $0.writingSince.map { now.seconds(since: $0) } ?? 0 }
    }

    /// Appends encoded frame bytes; never waits. Dropped after `close`.
    func enqueue(_ append: (inout [UInt8]) -> Void) {
        let handoff = state.withLock { state -> (UnsafeContinuation<[UInt8]?, Never>, [UInt8])? in
            guard state.closed == nil else { return nil }
            append(&state.buffer)
            guard let writer = state.writer else { return nil }
            state.writer = nil
            state.writingSince = .now()
            let batch = state.buffer
            state.buffer = []
            return (writer, batch)
        }
        if let (writer, batch) = handoff { writer.resume(returning: batch) }
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

    /// The writer task's next batch; nil once closed and empty.
    func nextBatch() async -> [UInt8]? {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<[UInt8]?, Never>) in
            let (batch, waiters) = state.withLock { state -> ([UInt8]??, [UnsafeContinuation<Void, any Error>]) in
                let waiters = state.spaceWaiters
                state.spaceWaiters = []
                state.writingSince = nil
                if !state.buffer.isEmpty {
                    state.writingSince = .now()
                    let batch = state.buffer
                    state.buffer = []
                    return (.some(batch), waiters)
                }
                if state.closed != nil { return (.some(nil), waiters) }
                state.writer = continuation
                return (nil, waiters)
            }
            for waiter in waiters { waiter.resume() }
            if let batch { continuation.resume(returning: batch) }
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
