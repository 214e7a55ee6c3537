import CascadeWire

extension RPCConnection {
    /// Routes one decoded frame. Throws a WireError for protocol violations (connection
    /// errors end the connection; stream errors reset one stream).
    func handle(_ frame: Frame) throws(WireError) {
        let payload: FramePayload
        do {
            payload = try FramePayload(frame, maxHeaderSize: localSettings.maxHeaderSize)
        } catch where error.kind == .headerTooLarge && side == .server && frame.type == .headers {
            // The caller learns why instead of getting a bare RESET (rpc.md §5.6).
            try rejectNewStream(frame.streamID, CallTrailers(
                code: .resourceExhausted,
                message: "call head of \(frame.payload.count) bytes exceeds the limit of \(localSettings.maxHeaderSize) bytes"))
            return
        }
        var effects = Effects()
        defer { effects.run() }
        let isFirst = try state.withLock { state throws(WireError) -> Bool in
            defer { state.receivedSettings = true }
            state.lastFrameReceived = .now()
            try Self.countForAbuse(payload, first: !state.receivedSettings, &state.limits)
            return !state.receivedSettings
        }
        if isFirst {
            guard case .settings(ack: false, _) = payload else {
                throw WireError(.unexpectedFrame, code: .protocolError, "the first frame must be SETTINGS, not \(frame.type)")
            }
        }
        try rejectIfIdle(frame, payload)
        switch payload {
        case .settings(ack: false, let entries):
            try applySettings(entries, first: isFirst, effects: &effects)
            outbound.enqueue { Frame.settingsAck.encode(into: &$0) }
        case .settings(ack: true, _):
            // We send SETTINGS once, so only the first ACK matches; the rest count as a flood.
            try state.withLock { state throws(WireError) in
                if state.settingsAcked { try state.limits.settings.hit() }
                state.settingsAcked = true
            }
        case .ping(ack: false, let data):
            outbound.enqueue { Frame.ping(data, ack: true).encode(into: &$0) }
        case .ping(ack: true, let data):
            try state.withLock { state throws(WireError) in
                if state.pingsOutstanding.removeValue(forKey: data) == nil { try state.limits.pings.hit() }
            }
        case .goaway(let last, let code, let reason):
            handleGoaway(last: last, code: code, reason: reason, effects: &effects)
        case .windowUpdate(let increment):
            try handleWindowUpdate(streamID: frame.streamID, increment: Int(increment), effects: &effects)
        case .reset(let code):
            let error: RPCError
            switch code {  // rpc.md §7.3
            case .cancel: error = RPCError(.cancelled, "the peer cancelled the call")
            case .refusedStream: error = RPCError.refusedStream
            case .limitExceeded, .enhanceYourCalm: error = RPCError(.resourceExhausted, "the peer reset the call (\(code))")
            default: error = RPCError(.internal, "the peer reset the call (\(code))")
            }
            state.withLock { Self.failStream(&$0, frame.streamID, error, &effects) }
            removeIfDone(frame.streamID)
        case .headers(let block, let endStream):
            try handleHeaders(streamID: frame.streamID, block: block, endStream: endStream, effects: &effects)
        case .data(let bytes, let endStream):
            try handleData(streamID: frame.streamID, bytes: bytes, endStream: endStream, effects: &effects)
        case .trailers(let block):
            try handleTrailers(streamID: frame.streamID, block: block, effects: &effects)
        case .unknown:
            break
        }
        // Acknowledgements are queued without waiting; a peer that never reads while making
        // us answer is stopped here rather than growing the queue.
        if outbound.queuedBytes > 4 * outbound.highWater {
            throw WireError(.abuse, code: .enhanceYourCalm, "more than \(4 * outbound.highWater) bytes of replies are waiting for the peer to read")
        }
    }

    /// Frames for a stream that was never opened are connection errors (rpc.md §4.4). A new
    /// call's HEADERS is the one frame that may name an idle stream on the server.
    private func rejectIfIdle(_ frame: Frame, _ payload: FramePayload) throws(WireError) {
        guard frame.streamID != 0 else { return }
        switch payload {
        case .headers where side == .server: return
        case .data, .trailers, .reset, .windowUpdate, .headers: break
        default: return
        }
        let idle = state.withLock { state in
            side == .server
                ? frame.streamID > state.lastPeerStreamID
                : frame.streamID % 2 == 0 || frame.streamID >= state.nextStreamID
        }
        if idle {
            throw WireError(.unexpectedFrame, code: .protocolError, "\(frame.type) on stream \(frame.streamID), which was never opened")
        }
    }

    static func countForAbuse(_ payload: FramePayload, first: Bool, _ limits: inout AbuseCounters) throws(WireError) {
        switch payload {
        case .ping(ack: false, _): try limits.pings.hit()
        case .settings(ack: false, _) where !first: try limits.settings.hit()
        case .reset: try limits.resets.hit()
        case .data(let bytes, let endStream) where bytes.isEmpty && !endStream: try limits.emptyFrames.hit()
        case .unknown(let frame) where frame.payload.isEmpty: try limits.emptyFrames.hit()
        case .windowUpdate(let increment) where increment < 1024: try limits.tinyWindowUpdates.hit()
        default: break
        }
    }

    private func applySettings(_ entries: [Setting], first: Bool, effects: inout Effects) throws(WireError) {
        try state.withLock { state throws(WireError) in
            let oldWindow = state.peerSettings.initialStreamWindow
            try state.peerSettings.apply(entries)
            if first { state.sendWindow = state.peerSettings.initialConnectionWindow }
            // A higher MAX_CONCURRENT_STREAMS may let queued calls open; each re-checks.
            let waiters = state.slotWaiters
            state.slotWaiters = []
            for entry in waiters { effects { entry.waiter.resume() } }
            let delta = state.peerSettings.initialStreamWindow - oldWindow
            if delta != 0 {
                for stream in state.streams.values { stream.sendWindow += delta }
            }
            Self.wakeWindowWaiters(&state, &effects)
        }
    }

    private func handleGoaway(last: UInt32, code: ErrorCode, reason: String, effects: inout Effects) {
        state.withLock { state in
            state.goawayLastStreamID = min(last, state.goawayLastStreamID ?? last)
            if state.goawayReason == nil { state.goawayReason = "\(code)\(reason.isEmpty ? "" : ": \(reason)")" }
            guard side == .client else { return }
            // Queued calls must not wait for a slot on a connection that is going away.
            let waiters = state.slotWaiters
            state.slotWaiters = []
            for entry in waiters { effects { entry.waiter.resume() } }
            let refused = RPCError(.unavailable, "the server is going away (\(code)\(reason.isEmpty ? "" : ": \(reason)")) and did not process the call", isSafeToRetry: true)
            for id in state.streams.keys where id > last {
                Self.failStream(&state, id, refused, &effects)
            }
        }
    }

    private func handleWindowUpdate(streamID: UInt32, increment: Int, effects: inout Effects) throws(WireError) {
        try state.withLock { state throws(WireError) in
            if streamID == 0 {
                state.sendWindow += increment
                guard state.sendWindow <= Int(Int32.max) else {
                    throw WireError(.windowOverflow, code: .flowControlError, "the connection window exceeds 2^31-1")
                }
            } else if let stream = state.streams[streamID] {
                stream.sendWindow += increment
                guard stream.sendWindow <= Int(Int32.max) else {
                    throw WireError(.windowOverflow, code: .flowControlError, streamID: streamID, "the stream window exceeds 2^31-1")
                }
            }
            Self.wakeWindowWaiters(&state, &effects)
        }
    }

    static func wakeWindowWaiters(_ state: inout ConnectionState, _ effects: inout Effects) {
        for stream in state.streams.values {
            if let waiter = stream.windowWaiter {
                stream.windowWaiter = nil
                effects { waiter.resume(returning: 0) }
            }
        }
    }

    private func handleHeaders(streamID: UInt32, block: [UInt8], endStream: Bool, effects: inout Effects) throws(WireError) {
        if side == .client {
            let head = try ResponseHead(serializedBytes: block)
            let misplaced = state.withLock { state -> Bool in
                guard let stream = state.streams[streamID] else { return false }
                // One response head, before any response message, never with END_STREAM (rpc.md §4.4).
                if stream.responseHead != nil || stream.hasQueuedMessage || stream.remoteEnded || endStream { return true }
                state.streams[streamID]?.responseHead = head
                return false
            }
            if misplaced {
                resetStream(streamID, code: .protocolError, failure: RPCError(.internal, "the server sent a response head out of order"))
            }
            return
        }
        try openServerStream(streamID: streamID, block: block, endStream: endStream, effects: &effects)
    }

    private func handleData(streamID: UInt32, bytes: [UInt8], endStream: Bool, effects: inout Effects) throws(WireError) {
        if side == .client && endStream {
            // A server ends a call with TRAILERS, never with END_STREAM (rpc.md §4.4).
            resetStream(streamID, code: .protocolError, failure: RPCError(.internal, "the server set END_STREAM on DATA instead of sending trailers"))
            return
        }
        var credits: [(UInt32, Int)] = []
        var overflow: RPCError?
        var afterEnd = false
        var secondResponse: String?
        var requestComplete = false
        try state.withLock { state throws(WireError) in
            state.receiveUncredited += bytes.count
            if state.receiveUncredited >= localSettings.initialConnectionWindow / 2 {
                credits.append((0, state.receiveUncredited))
                state.receiveUncredited = 0
            }
            guard let stream = state.streams[streamID], stream.failure == nil else {
                return  // a finished or reset call: drop it, the connection credit above still flows.
            }
            if stream.remoteEnded {
                // DATA after the client's END_STREAM (rpc.md §4.4): reset below, outside the lock.
                afterEnd = true
                return
            }
            stream.receiveUncredited += bytes.count
            // Credit goes back as bytes arrive (unless the reader is behind), so a peer that
            // respects flow control never has more than one window outstanding.
            if stream.receiveUncredited > localSettings.initialStreamWindow {
                throw WireError(.windowOverflow, code: .flowControlError, streamID: streamID, "the peer sent past the stream window")
            }
            do throws(RPCError) {
                try stream.deframer.feed(bytes[...]) { message in
                    stream.queue.append(message)
                    stream.queuedBytes += message.count + MessageFraming.prefixSize
                }
            } catch {
                overflow = error
            }
            if endStream {
                stream.remoteEnded = true
                if !stream.deframer.isIdle && overflow == nil {
                    overflow = RPCError(.internal, "the stream ended in the middle of a message")
                }
            }
            requestComplete = stream.immediate != nil && stream.remoteEnded && overflow == nil
            if let credit = Self.streamCredit(stream, window: localSettings.initialStreamWindow) {
                credits.append((streamID, credit))
            }
            // A unary call takes one response message; a second is a protocol violation (§3.2).
            if let method = stream.unaryMethod, stream.queue.count - stream.queueHead > 1 { secondResponse = method }
            if let receiver = stream.receiver, stream.hasQueuedMessage || stream.remoteEnded {
                stream.receiver = nil
                let message: ArraySlice<UInt8>? = stream.hasQueuedMessage ? stream.popMessage() : nil
                effects { receiver.resume(returning: message) }
            }
        }
        for (id, amount) in credits {
            outbound.enqueue { Frame.windowUpdate(streamID: id, increment: UInt32(amount)).encode(into: &$0) }
        }
        if requestComplete { runImmediate(streamID) }
        if let method = secondResponse {
            resetStream(streamID, code: .protocolError, failure: RPCError(.internal, "\(method) sent more than one response message"))
        }
        if afterEnd {
            resetStream(streamID, code: .streamClosed, failure: RPCError(.internal, "the client sent DATA after ending its side of the call"))
            removeIfDone(streamID)
        }
        if let overflow {
            if side == .server {
                abortServerStream(streamID, overflow)
            } else {
                resetStream(streamID, code: .limitExceeded, failure: overflow)
            }
        }
    }

    /// Credit to return for a stream: only while its unread queue is under one window, so a
    /// reader that stops reading stops the sender (rpc.md, flow control).
    static func streamCredit(_ stream: StreamState, window: Int) -> Int? {
        guard stream.receiveUncredited >= window / 2, stream.queuedBytes < window, !stream.remoteEnded else { return nil }
        let credit = stream.receiveUncredited
        stream.receiveUncredited = 0
        return credit
    }

    private func handleTrailers(streamID: UInt32, block: [UInt8], effects: inout Effects) throws(WireError) {
        guard side == .client else {
            throw WireError(.unexpectedFrame, code: .protocolError, "a client sent TRAILERS on stream \(streamID)")
        }
        let trailers = try CallTrailers(serializedBytes: block)
        state.withLock { state in
            guard let stream = state.streams[streamID] else { return }
            stream.trailers = trailers
            stream.remoteEnded = true
            stream.localEnded = true
            if let waiter = stream.windowWaiter {
                stream.windowWaiter = nil
                effects { waiter.resume(returning: 0) }
            }
            if stream.unaryWaiter != nil {
                // Resolved and forgotten: the stream must not be stored back below.
                Self.resolveUnary(&state, streamID, stream, &effects)
                return
            }
            if let receiver = stream.receiver {
                stream.receiver = nil
                if stream.hasQueuedMessage {
                    let message = stream.popMessage()
                    effects { receiver.resume(returning: message) }
                } else if trailers.code == .ok {
                    effects { receiver.resume(returning: nil) }
                } else {
                    effects { receiver.resume(throwing: RPCError(trailers.code, trailers.message)) }
                }
            }
        }
    }
}
