import CascadeNet
import CascadeWire

extension RPCConnection {
    /// A client's HEADERS on a new stream: check the id, the concurrency limit, the method and
    /// the caller's role, then start the handler.
    func openServerStream(streamID: UInt32, block: [UInt8], endStream: Bool, effects: inout Effects) throws(WireError) {
        guard streamID % 2 == 1 else {
            throw WireError(.unexpectedFrame, code: .protocolError, "a client opened stream \(streamID); client stream ids are odd")
        }
        let head: CallHead
        let registered: RPCRouter.Registered?
        if let known = recognizedHead(block) {
            (head, registered) = known
        } else {
            // The method is looked up before the metadata is decoded (rpc.md §4.5): a call that
            // will be refused (unknown method, role not allowed) never pays for its metadata.
            let named: (method: String, timeoutMicroseconds: UInt64)
            do {
                named = try CallHead.methodAndTimeout(block)
                guard !named.method.isEmpty else { throw RPCError(.internal, "malformed call head: no method") }
            } catch {
                let message = (error as? WireError).map { "malformed call head: \($0.message)" } ?? "\(error)"
                try rejectNewStream(streamID, CallTrailers(code: .internal, message: message))
                return
            }
            let method = router?.lookup(named.method)
            if let method, let peer, method.allowedRoles.contains(peer.role) {
                do {
                    head = try CallHead(serializedBytes: block)
                    try head.validate()
                } catch {
                    let message = (error as? WireError).map { "malformed call head: \($0.message)" } ?? "\(error)"
                    try rejectNewStream(streamID, CallTrailers(code: .internal, message: message))
                    return
                }
                metadataEntriesDecoded.add(head.metadata.count, ordering: .relaxed)
                registered = remember(head, block: block)
            } else {
                // Refused below (UNIMPLEMENTED or PERMISSION_DENIED); its metadata stays undecoded.
                head = CallHead(method: named.method, timeoutMicroseconds: named.timeoutMicroseconds)
                registered = method
            }
        }
        enum Decision { case refuse, ignore, reject(CallTrailers), start(RPCRouter.Registered), immediate }
        // Immediate handlers skip the task unless the call has a deadline or interceptors.
        let immediateAllowed = head.timeoutMicroseconds == 0 && (router?.interceptors.isEmpty ?? true)
        let decision = try state.withLock { state throws(WireError) -> Decision in
            guard streamID > state.lastPeerStreamID else {
                throw WireError(.unexpectedFrame, code: .protocolError,
                                "HEADERS on stream \(streamID), not above the last opened stream \(state.lastPeerStreamID)")
            }
            state.lastPeerStreamID = streamID
            // Above the final GOAWAY's last stream id: ignored; the client retries it elsewhere.
            if state.drainLastStreamID != nil { return .ignore }
            if state.closed != nil { return .refuse }
            state.lastStreamActivity = .now()
            if state.activeHandlers >= localSettings.maxConcurrentStreams { return .refuse }
            let stream = StreamState(sendWindow: state.peerSettings.initialStreamWindow, maxMessageSize: localSettings.maxMessageSize)
            stream.remoteEnded = endStream
            if let observer { stream.observation = CallObservation(observer: observer, method: head.method, opened: .now()) }
            state.streams[streamID] = stream
            guard let method = registered else {
                return .reject(CallTrailers(code: .unimplemented, message: "the method \"\(head.method)\" does not exist"))
            }
            guard let peer, method.allowedRoles.contains(peer.role) else {
                let who = peer.map { "\($0)" } ?? "an unauthenticated peer"
                return .reject(CallTrailers(code: .permissionDenied, message: "\(who) may not call \(head.method)"))
            }
            // The identity's calls over all its connections are capped too (rpc.md §15.1).
            if let identity = state.identity, !identity.acquireStream() {
                state.streams[streamID] = nil
                return .refuse
            }
            state.activeHandlers += 1
            // Attached under the same lock that counted it, so a failure in between frees it.
            if let run = method.immediate, immediateAllowed {
                let context = ServerContext(method: head.method, peer: peer, metadata: head.metadata, deadline: nil, endpoint: endpoint)
                stream.immediate = ImmediateCall(run: run, context: context)
                return .immediate
            }
            return .start(method)
        }
        switch decision {
        case .ignore:
            break
        case .refuse:
            // Resets the client makes us send count against the same limit (rpc.md §15).
            try state.withLock { state throws(WireError) in try state.limits.resets.hit() }
            outbound.enqueue { Frame.reset(streamID: streamID, code: .refusedStream).encode(into: &$0) }
        case .reject(let trailers):
            if trailers.code == .permissionDenied { noteDenied(head.method, trailers) }
            finishServerStream(streamID, trailers: trailers)
        case .immediate:
            if endStream { runImmediate(streamID) }
        case .start(let method):
            startHandler(method, head: head, streamID: streamID)
        }
    }

    /// Answers a new stream trailers-only without running anything (rpc.md §5.5, §5.6).
    func rejectNewStream(_ streamID: UInt32, _ trailers: CallTrailers) throws(WireError) {
        try state.withLock { state throws(WireError) in
            guard streamID > state.lastPeerStreamID, streamID % 2 == 1 else {
                throw WireError(.unexpectedFrame, code: .protocolError, "HEADERS on stream \(streamID), which is not a new client stream")
            }
            state.lastPeerStreamID = streamID
        }
        let block = trailers.serializedBytes()
        outbound.enqueue { Frame.trailers(streamID: streamID, block).encode(into: &$0) }
    }

    private func startHandler(_ method: RPCRouter.Registered, head: CallHead, streamID: UInt32) {
        let timeout = head.timeoutMicroseconds > 0 ? Duration.microseconds(Int64(min(head.timeoutMicroseconds, UInt64(Int64.max)))) : nil
        let context = ServerContext(
            method: head.method, peer: peer, metadata: head.metadata,
            deadline: timeout.map { MonotonicTime.now() + $0 }, endpoint: endpoint)
        let call = ServerCall(context: context, connection: self, streamID: streamID)
        let interceptors = router?.interceptors ?? []
        let task = Task(executorPreference: method.onEventLoop ? loop : nil) { [router] in
            var trailers: CallTrailers
            do {
                if let router, !interceptors.isEmpty {
                    try await router.run({ try await method.handler(call) }, context: context)
                } else {
                    try await method.handler(call)
                }
                trailers = CallTrailers()
            } catch let error as RPCError {
                trailers = CallTrailers(code: error.code, message: error.message)
            } catch is CancellationError {
                trailers = CallTrailers(code: .cancelled, message: "the call was cancelled")
            } catch {
                trailers = CallTrailers(code: .unknown, message: "\(error)")
            }
            if trailers.code == .permissionDenied { self.noteDenied(head.method, trailers) }
            self.handlerFinished(streamID, trailers: trailers)
        }
        let timer = timeout.map { limit in
            loop.schedule(after: limit) { [weak self] in
                self?.expireServerStream(streamID, after: limit)
            }
        }
        state.withLock { state in
            state.streams[streamID]?.handler = task
            if let timer { state.streams[streamID]?.deadlineTimer = timer }
        }
    }

    /// The head and method of the last call opened with exactly these HEADERS bytes, unless a
    /// registration changed the router since. A client calling one method over and over sends
    /// the same bytes each time, and this skips decoding, UTF-8 checks and the lookup.
    private func recognizedHead(_ block: [UInt8]) -> (CallHead, RPCRouter.Registered)? {
        guard let router else { return nil }
        let generation = router.generation.load(ordering: .acquiring)
        return lastHead.withLock { last in
            guard let last, last.generation == generation, last.block == block else { return nil }
            return (last.head, last.method)
        }
    }

    /// Looks the method up and remembers the result for the next call with the same bytes.
    private func remember(_ head: CallHead, block: [UInt8]) -> RPCRouter.Registered? {
        guard let router else { return nil }
        // Read before the lookup: a registration in between makes the entry stale, not wrong.
        let generation = router.generation.load(ordering: .acquiring)
        guard let method = router.lookup(head.method) else { return nil }
        lastHead.withLock { $0 = RecognizedHead(block: block, head: head, method: method, generation: generation) }
        return method
    }

    /// Runs an immediate unary handler once its request is complete, inline on the loop. A
    /// response too large for the windows is sent from a task, like any handler's.
    func runImmediate(_ id: UInt32) {
        let taken = state.withLock { state -> (ImmediateCall, Result<ArraySlice<UInt8>, RPCError>)? in
            guard let stream = state.streams[id], let call = stream.immediate, stream.remoteEnded, stream.failure == nil
            else { return nil }
            stream.immediate = nil
            let method = call.context.method
            switch stream.queue.count - stream.queueHead {
            case 1: return (call, .success(stream.popMessage()))
            case 0: return (call, .failure(RPCError(.internal, "\(method) needs one request message and got none")))
            default: return (call, .failure(RPCError(.internal, "\(method) takes one request message and got more")))
            }
        }
        guard let (call, request) = taken else { return }
        do {
            let response = try call.run(request.get(), call.context)
            if try sendFinal(response, on: id) {
                handlerFinished(id, trailers: CallTrailers())
                return
            }
            let task = Task(executorPreference: loop) {
                do {
                    try await self.send(response, on: id)
                    self.handlerFinished(id, trailers: CallTrailers())
                } catch let error as RPCError {
                    self.handlerFinished(id, trailers: CallTrailers(code: error.code, message: error.message))
                } catch {
                    self.handlerFinished(id, trailers: CallTrailers(code: .cancelled, message: "the call was cancelled"))
                }
            }
            state.withLock { $0.streams[id]?.handler = task }
        } catch let error as RPCError {
            if error.code == .permissionDenied { noteDenied(call.context.method, CallTrailers(code: error.code, message: error.message)) }
            handlerFinished(id, trailers: CallTrailers(code: error.code, message: error.message))
        } catch {
            handlerFinished(id, trailers: CallTrailers(code: .unknown, message: "\(error)"))
        }
    }

    /// Tells the router's observer about a call answered PERMISSION_DENIED.
    func noteDenied(_ method: String, _ trailers: CallTrailers) {
        router?.denied(method, peer: peer, address: endpoint?.address, message: trailers.message)
    }

    /// The deadline passed: DEADLINE_EXCEEDED trailers go out now and the handler is cancelled.
    private func expireServerStream(_ id: UInt32, after limit: Duration) {
        let error = RPCError(.deadlineExceeded, "the call's deadline of \(limit) passed")
        var effects = Effects()
        let live = state.withLock { state -> Bool in
            guard let stream = state.streams[id], stream.failure == nil, stream.trailersSent == false else { return false }
            Self.failStream(&state, id, error, &effects)
            state.streams[id]?.trailersSent = true
            return true
        }
        effects.run()
        if live {
            let trailers = CallTrailers(code: .deadlineExceeded, message: error.message).serializedBytes()
            outbound.enqueue { Frame.trailers(streamID: id, trailers).encode(into: &$0) }
        }
    }

    func handlerFinished(_ id: UInt32, trailers: CallTrailers) {
        let timer = state.withLock { state -> TimerHandle? in
            state.activeHandlers -= 1
            state.identity?.releaseStream()
            let timer = state.streams[id]?.deadlineTimer
            state.streams[id]?.handler = nil
            return timer
        }
        if let timer { loop.cancel(timer) }
        finishServerStream(id, trailers: trailers)
    }

    /// Fast path for a final response: DATA and OK trailers together. False when the windows
    /// or frame size do not allow it (the caller then sends normally).
    func sendFinal(_ message: [UInt8], on id: UInt32) throws(RPCError) -> Bool {
        let framedCount = message.count + MessageFraming.prefixSize
        return try state.withLock { state throws(RPCError) -> Bool in
            guard let stream = state.streams[id] else { throw state.closed ?? RPCError(.cancelled, "the call has ended") }
            if let failure = stream.failure { throw failure }
            guard !stream.trailersSent,
                  framedCount <= min(stream.sendWindow, state.sendWindow, state.peerSettings.maxFrameSize)
            else { return false }
            stream.sendWindow -= framedCount
            state.sendWindow -= framedCount
            stream.trailersSent = true
            stream.localEnded = true
            stream.observeEnd(.ok)
            outbound.enqueue { out in
                MessageFraming.appendDataFrame(streamID: id, message: message, endStream: false, to: &out)
                Frame.trailers(streamID: id, CallTrailers.okBytes).encode(into: &out)
            }
            return true
        }
    }

    /// Ends a call the server cannot continue (an oversized message): the handler is cancelled
    /// and woken, and the trailers go out now.
    func abortServerStream(_ id: UInt32, _ error: RPCError) {
        var effects = Effects()
        let live = state.withLock { state -> Bool in
            guard let stream = state.streams[id], !stream.trailersSent else { return false }
            Self.failStream(&state, id, error, &effects)
            state.streams[id]?.trailersSent = true
            return true
        }
        effects.run()
        if live {
            let block = CallTrailers(code: error.code, message: error.message).serializedBytes()
            outbound.enqueue { Frame.trailers(streamID: id, block).encode(into: &$0) }
        }
        removeIfDone(id)
    }

    /// Sends TRAILERS unless the call was reset (a reset call gets no trailers) and forgets it.
    func finishServerStream(_ id: UInt32, trailers: CallTrailers) {
        let send = state.withLock { state -> Bool in
            guard let stream = state.streams[id] else { return false }
            // A reset call (either way) gets no trailers (rpc.md §4.2).
            let send = stream.failure == nil && !stream.trailersSent
            if send { stream.observeEnd(trailers.code) }
            stream.trailersSent = true
            stream.localEnded = true
            if stream.handler == nil { state.streams[id] = nil }
            return send
        }
        if send {
            let block = trailers.serializedBytes()
            outbound.enqueue { Frame.trailers(streamID: id, block).encode(into: &$0) }
        }
    }
}
