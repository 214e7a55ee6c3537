import CascadeNet
import CascadeWire

extension RPCConnection {
    /// Sends one message on a stream, in DATA frames no larger than the peer allows and only
    /// as the stream and connection windows permit; waits for credit and for queue space.
    func send(_ message: [UInt8], on id: UInt32, endStream: Bool = false) async throws {
        try await sendFramed(prefix: MessageFraming.prefix(for: message), body: message[...], on: id, endStream: endStream)
    }

    /// Sends a message encoded behind `MessageFraming.headroom` bytes: when it fits the
    /// windows and one frame, its header and length prefix are written into the headroom and
    /// the array itself is queued, so a large streamed message is not copied again. Otherwise
    /// it goes the ordinary way.
    func sendHeadroomed(_ storage: consuming [UInt8], on id: UInt32) async throws {
        try Task.checkCancellation()
        let headroom = MessageFraming.headroom
        // Owned here (consuming), so writing the header into the headroom copies nothing.
        var framed = storage
        precondition(framed.count >= headroom, "a headroomed message must start with its headroom")
        // Space first: what waits for a slow socket is the sender, not its message in the queue.
        if outbound.queuedBytes > outbound.highWater { try await outbound.waitForSpace() }
        if try queueInPlace(&framed, on: id) { return }
        // Sent from the same storage, as a slice: a message waiting for credit is held once.
        let body = framed[headroom...]
        try await sendFramed(prefix: MessageFraming.prefix(count: body.count), body: body, on: id, endStream: false)
    }

    /// Server side: waits until the stream's and the connection's send windows could take a
    /// message of `bytes` (capped at the larger of the peer's initial window and
    /// `RPCOptions.creditFloor`), so a handler reads what it will send only once the peer can
    /// take it (rpc.md §15.1). The wait counts as blocked for the blocked-stream limit.
    func waitForWindow(_ bytes: Int, on id: UInt32) async throws {
        if outbound.queuedBytes > outbound.highWater { try await outbound.waitForSpace() }
        let floor = options.creditFloor
        while true {
            try Task.checkCancellation()
            let ready = try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Int, any Error>) in
                    let outcome = state.withLock { state -> Result<Int, RPCError>? in
                        guard let stream = state.streams[id] else {
                            return .failure(state.closed ?? RPCError(.cancelled, "the call has ended"))
                        }
                        if let failure = stream.failure ?? state.closed { return .failure(failure) }
                        if stream.trailers != nil || stream.localEnded { return .success(1) }
                        let streamNeed = min(bytes, max(state.peerSettings.initialStreamWindow, floor))
                        let connectionNeed = min(bytes, max(state.peerSettings.initialConnectionWindow, floor))
                        if stream.sendWindow >= max(streamNeed, 1) && state.sendWindow >= max(connectionNeed, 1) {
                            stream.unpark()
                            return .success(1)
                        }
                        // Woken (with 0) by any WINDOW_UPDATE or a failure; then we look again.
                        stream.windowWaiter = continuation
                        stream.markBlocked()
                        return nil
                    }
                    switch outcome {
                    case .success(let value): continuation.resume(returning: value)
                    case .failure(let error): continuation.resume(throwing: error)
                    case nil: break
                    }
                }
            } onCancel: {
                self.cancelStream(id)
            }
            if ready == 1 { return }
        }
    }

    /// The lock-held half of `sendHeadroomed`: true once queued (or dropped because the server
    /// already ended the call), false when the windows or frame size do not allow it now.
    private func queueInPlace(_ framed: inout [UInt8], on id: UInt32) throws(RPCError) -> Bool {
        let payloadLength = framed.count - Frame.headerSize
        var head: [UInt8] = []
        head.reserveCapacity(MessageFraming.headroom)
        FrameEncoder.appendHeader(payloadLength: payloadLength, type: .data, flags: [], streamID: id, to: &head)
        MessageFraming.appendPrefix(length: payloadLength - MessageFraming.prefixSize, to: &head)
        framed.replaceSubrange(0..<MessageFraming.headroom, with: head)
        let frames = framed
        framed = []  // the queue holds the only reference, so later appends to it copy nothing
        let queued = try state.withLock { state throws(RPCError) -> Bool in
            guard let stream = state.streams[id] else {
                throw state.closed ?? RPCError(.cancelled, "the call has ended")
            }
            // The server already ended the call: stop sending, quietly (rpc.md §4.1).
            if stream.trailers != nil { return true }
            if let failure = stream.failure ?? state.closed { throw failure }
            if stream.localEnded { throw RPCError(.internal, "the call's sending side is already finished") }
            guard payloadLength <= min(stream.sendWindow, state.sendWindow, state.peerSettings.maxFrameSize) else { return false }
            stream.sendWindow -= payloadLength
            state.sendWindow -= payloadLength
            stream.noteSent(payloadLength, progressFloor: options.stalledWindowProgress)
            outbound.enqueue(adopting: frames)
            return true
        }
        if !queued { framed = frames }
        return queued
    }

    /// Ends our side of a stream (an empty DATA with END_STREAM).
    func finishSending(on id: UInt32) async throws {
        try await sendFramed(prefix: [], body: [], on: id, endStream: true)
    }

    /// Sends prefix + body (never joined in memory) as DATA frames.
    private func sendFramed(prefix: [UInt8], body: ArraySlice<UInt8>, on id: UInt32, endStream: Bool) async throws {
        let total = prefix.count + body.count
        let base = body.startIndex
        var offset = 0
        repeat {
            try Task.checkCancellation()
            // Space first: a slow socket holds back the sender, not more queued DATA.
            if offset > 0 || outbound.queuedBytes > outbound.highWater { try await outbound.waitForSpace() }
            let sent = try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Int, any Error>) in
                    let outcome = state.withLock { state -> Result<Int, RPCError>? in
                        guard let stream = state.streams[id] else {
                            return .failure(state.closed ?? RPCError(.cancelled, "the call has ended"))
                        }
                        // The server already ended the call: stop sending, quietly (rpc.md §4.1).
                        if stream.trailers != nil { return .success(total - offset) }
                        if let failure = stream.failure ?? state.closed { return .failure(failure) }
                        if stream.localEnded { return .failure(RPCError(.internal, "the call's sending side is already finished")) }
                        let remaining = total - offset
                        let allowed = min(remaining, stream.sendWindow, state.sendWindow, state.peerSettings.maxFrameSize)
                        if allowed <= 0 && remaining > 0 {
                            // Parked until a WINDOW_UPDATE (or a failure) wakes us; then we retry.
                            stream.windowWaiter = continuation
                            stream.markBlocked()
                            return nil
                        }
                        stream.sendWindow -= allowed
                        state.sendWindow -= allowed
                        stream.noteSent(allowed, progressFloor: options.stalledWindowProgress)
                        let last = endStream && allowed == remaining
                        if last { stream.localEnded = true }
                        let start = offset
                        let end = offset + allowed
                        let head = prefix[min(start, prefix.count)..<min(end, prefix.count)]
                        let tail = body[(base + max(start - prefix.count, 0))..<(base + max(end - prefix.count, 0))]
                        outbound.enqueue { out in
                            FrameEncoder.appendData(streamID: id, head, tail, endStream: last, to: &out)
                        }
                        return .success(allowed)
                    }
                    switch outcome {
                    case .success(let count): continuation.resume(returning: count)
                    case .failure(let error): continuation.resume(throwing: error)
                    case nil: break
                    }
                }
            } onCancel: {
                self.cancelStream(id)
            }
            offset += sent
        } while offset < total
        if endStream { removeIfDone(id) }
    }

    /// The next message on a stream; nil when the peer finished cleanly. A client stream
    /// whose trailers carry an error throws that status.
    func receive(on id: UInt32) async throws -> ArraySlice<UInt8>? {
        var credit: Int?
        defer {
            if let credit {
                outbound.enqueue { Frame.windowUpdate(streamID: id, increment: UInt32(credit)).encode(into: &$0) }
            }
        }
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<ArraySlice<UInt8>?, any Error>) in
                let outcome = state.withLock { state -> Result<ArraySlice<UInt8>?, RPCError>? in
                    guard let stream = state.streams[id] else {
                        return .failure(state.closed ?? RPCError(.cancelled, "the call has ended"))
                    }
                    if stream.hasQueuedMessage {
                        let message = stream.popMessage()
                        credit = Self.streamCredit(stream, window: localSettings.initialStreamWindow)
                        return .success(message)
                    }
                    // Trailers that arrived win over a failure recorded after them (the server
                    // finished the call, then the connection closed).
                    if let trailers = stream.trailers {
                        return trailers.code == .ok ? .success(nil) : .failure(RPCError(trailers.code, trailers.message))
                    }
                    if let failure = stream.failure { return .failure(failure) }
                    if stream.remoteEnded { return .success(nil) }
                    if let closed = state.closed { return .failure(closed) }
                    stream.receiver = continuation
                    return nil
                }
                switch outcome {
                case .success(let message): continuation.resume(returning: message)
                case .failure(let error): continuation.resume(throwing: error)
                case nil: break
                }
            }
        } onCancel: {
            self.cancelStream(id)
        }
    }

    /// The one response of a unary call. The reader resolves the call when its trailers
    /// arrive, so the caller wakes once, with the outcome, and the stream is already gone.
    func unaryResponse(_ method: String, on id: UInt32) async throws -> ArraySlice<UInt8> {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<ArraySlice<UInt8>, any Error>) in
                var effects = Effects()
                state.withLock { state in
                    guard let stream = state.streams[id] else {
                        let error = state.closed ?? RPCError(.cancelled, "the call has ended")
                        effects { continuation.resume(throwing: error) }
                        return
                    }
                    stream.unaryWaiter = continuation
                    stream.unaryMethod = method
                    // Trailers that arrived win over a failure recorded after them.
                    if stream.trailers != nil {
                        Self.resolveUnary(&state, id, stream, &effects)
                    } else if let failure = stream.failure ?? state.closed {
                        stream.unaryWaiter = nil
                        effects { continuation.resume(throwing: failure) }
                    }
                }
                effects.run()
            }
        } onCancel: {
            self.cancelStream(id)
        }
    }

    /// Ends a unary client call whose trailers arrived: resumes its waiter with the single
    /// response (or the error) and forgets the stream, freeing its slot. Lock held.
    static func resolveUnary(_ state: inout ConnectionState, _ id: UInt32, _ stream: StreamState, _ effects: inout Effects) {
        guard let waiter = stream.unaryWaiter, let trailers = stream.trailers else { return }
        stream.unaryWaiter = nil
        let method = stream.unaryMethod ?? "the call"
        let outcome: Result<ArraySlice<UInt8>, RPCError>
        if trailers.code != .ok {
            outcome = .failure(RPCError(trailers.code, trailers.message))
        } else if !stream.hasQueuedMessage {
            outcome = .failure(RPCError(.internal, "\(method) ended without a response"))
        } else {
            let message = stream.popMessage()
            outcome = stream.hasQueuedMessage
                ? .failure(RPCError(.internal, "\(method) sent more than one response message")) : .success(message)
        }
        state.streams[id] = nil
        state.openClientStreams -= 1
        if !state.slotWaiters.isEmpty {
            let next = state.slotWaiters.removeFirst().waiter
            effects { next.resume() }
        }
        effects { waiter.resume(with: outcome) }
    }

    /// The caller gave up: RESET CANCEL, and the call fails locally with CANCELLED.
    func cancelStream(_ id: UInt32, error: RPCError = RPCError(.cancelled, "the call was cancelled")) {
        let live = state.withLock { state in state.streams[id].map { $0.failure == nil && !($0.remoteEnded && $0.localEnded) } ?? false }
        guard live else { return }
        resetStream(id, code: .cancel, failure: error)
        removeIfDone(id)
    }

    /// Drops a stream whose both sides are over (or that failed) once nobody waits on it.
    func removeIfDone(_ id: UInt32) {
        // Client streams are removed only by forgetClientStream, which also frees their slot.
        guard side == .server else { return }
        state.withLock { state in
            guard let stream = state.streams[id], stream.receiver == nil, stream.windowWaiter == nil,
                  stream.handler == nil || side == .client
            else { return }
            let bothEnded = stream.remoteEnded && stream.localEnded && !stream.hasQueuedMessage
            if bothEnded || (stream.failure != nil && side == .server && stream.handler == nil) {
                state.streams[id] = nil
            }
        }
    }

    /// The trailers a client stream ended with, if it has.
    func trailers(of id: UInt32) -> CallTrailers? {
        state.withLock { $0.streams[id]?.trailers }
    }

    /// Client side: opens a call (HEADERS) and returns its stream id. Waits while the peer's
    /// MAX_CONCURRENT_STREAMS is reached, instead of being refused.
    /// With a `deadline`, the wait for a slot counts against the call's time, and the head
    /// carries the time left when the call actually opens (rpc.md §9.2).
    func openCall(
        _ head: CallHead, deadline: MonotonicTime? = nil, endStream: Bool = false, message: [UInt8]? = nil
    ) async throws -> (id: UInt32, sentMessage: Bool) {
        precondition(side == .client, "only a client opens calls")
        while true {
            var head = head
            var left: UInt64?
            if let deadline {
                let now = MonotonicTime.now()
                guard now < deadline else {
                    throw RPCError(.deadlineExceeded, "\(head.method) ran out of time waiting for a free stream")
                }
                let remaining = deadline.nanoseconds - now.nanoseconds
                left = remaining
                head.timeoutMicroseconds = max(1, remaining / 1000)
            }
            // Without a deadline or metadata a method's head is the same bytes every time.
            let block = head.timeoutMicroseconds == 0 && head.metadata.isEmpty ? plainHead(head.method) : head.serializedBytes()
            if let opened = try tryOpenCall(block, endStream: endStream, message: message) { return opened }
            let waiterID = state.withLock { state -> UInt64 in
                state.nextSlotWaiterID += 1
                return state.nextSlotWaiterID
            }
            let method = head.method
            let expiry = left.map { nanos in
                loop.schedule(after: .nanoseconds(Int64(clamping: nanos))) { [weak self] in
                    self?.dropSlotWaiter(waiterID, RPCError(.deadlineExceeded, "\(method) ran out of time waiting for a free stream"))
                }
            }
            defer { if let expiry { _ = loop.cancel(expiry) } }
            // A caller that gives up while queued for a slot leaves the queue at once.
            try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                    let ready = state.withLock { state -> Bool? in
                        if state.closed != nil || state.openClientStreams < state.peerSettings.maxConcurrentStreams { return true }
                        if Task.isCancelled { return false }
                        state.slotWaiters.append((waiterID, continuation))
                        return nil
                    }
                    switch ready {
                    case true?: continuation.resume()
                    case false?: continuation.resume(throwing: RPCError(.cancelled, "the call was cancelled while waiting for a free stream"))
                    case nil: break
                    }
                }
            } onCancel: {
                dropSlotWaiter(waiterID, RPCError(.cancelled, "the call was cancelled while waiting for a free stream"))
            }
        }
    }

    /// Takes a queued call out of the slot queue and fails it, if it is still waiting.
    private func dropSlotWaiter(_ waiterID: UInt64, _ error: RPCError) {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, any Error>? in
            guard let index = state.slotWaiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
            return state.slotWaiters.remove(at: index).waiter
        }
        waiter?.resume(throwing: error)
    }

    /// The encoded head of a call to `method` with no deadline and no metadata; the last one is
    /// kept, as a client usually calls the same method again.
    private func plainHead(_ method: String) -> [UInt8] {
        if let known = lastPlainHead.withLock({ last in last.flatMap { $0.method == method ? $0.block : nil } }) {
            return known
        }
        let block = CallHead(method: method).serializedBytes()
        lastPlainHead.withLock { $0 = (method, block) }
        return block
    }

    /// Opens the stream; a small first message (a unary request) goes out in the same write
    /// as the HEADERS, with END_STREAM, when the windows allow it.
    private func tryOpenCall(_ block: [UInt8], endStream: Bool, message: [UInt8]?) throws(RPCError) -> (id: UInt32, sentMessage: Bool)? {
        try state.withLock { state throws(RPCError) -> (id: UInt32, sentMessage: Bool)? in
            if var closed = state.closed {
                closed.isSafeToRetry = true
                throw closed
            }
            if state.goawayLastStreamID != nil {
                let why = state.goawayReason.map { " (\($0))" } ?? ""
                throw RPCError(.unavailable, "the connection is going away\(why); open a new one", isSafeToRetry: true)
            }
            guard block.count <= state.peerSettings.maxHeaderSize, block.count <= state.peerSettings.maxFrameSize else {
                throw RPCError(.resourceExhausted, "the call head of \(block.count) bytes exceeds the peer's limit")
            }
            guard state.openClientStreams < state.peerSettings.maxConcurrentStreams else { return nil }
            let id = state.nextStreamID
            guard id < UInt32(Int32.max) else {
                throw RPCError(.unavailable, "the connection has used all its stream ids; open a new one", isSafeToRetry: true)
            }
            state.nextStreamID += 2
            state.openClientStreams += 1
            let stream = StreamState(sendWindow: state.peerSettings.initialStreamWindow, maxMessageSize: localSettings.maxMessageSize)
            var inline: [UInt8]?
            let framedCount = (message?.count ?? 0) + MessageFraming.prefixSize
            if let message, framedCount <= min(stream.sendWindow, state.sendWindow, state.peerSettings.maxFrameSize) {
                stream.sendWindow -= framedCount
                state.sendWindow -= framedCount
                stream.localEnded = true
                inline = message
            } else {
                stream.localEnded = endStream && message == nil
            }
            state.streams[id] = stream
            // Enqueued under the lock so stream ids reach the wire in increasing order.
            outbound.enqueue { out in
                Frame.headers(streamID: id, block, endStream: stream.localEnded && inline == nil).encode(into: &out)
                if let inline { MessageFraming.appendDataFrame(streamID: id, message: inline, endStream: true, to: &out) }
            }
            return (id, inline != nil)
        }
    }

    /// Client side: the caller is done with the call; forget it and let a waiting call open.
    func forgetClientStream(_ id: UInt32) {
        let waiter = state.withLock { state -> UnsafeContinuation<Void, any Error>? in
            guard state.streams.removeValue(forKey: id) != nil else { return nil }
            state.openClientStreams -= 1
            return state.slotWaiters.isEmpty ? nil : state.slotWaiters.removeFirst().waiter
        }
        waiter?.resume()
    }
}
