import CascadeNet
import CascadeWire

extension RPCConnection {
    /// Client: ping when the peer has been silent, close when a ping goes unanswered.
    /// Server: close a connection that has had no calls for the idle timeout.
    func keepaliveLoop() async {
        let shortest = min(options.keepaliveInterval, options.keepaliveTimeout, options.idleTimeout,
                           options.settingsTimeout, options.stalledWindowTimeout, options.writeStallTimeout)
        let tick = max(.milliseconds(10), shortest / 2)
        while !Task.isCancelled {
            do { try await loop.sleep(for: tick) } catch { return }
            enum Action { case none, ping(UInt64), close(RPCError, ErrorCode), idle }
            let now = MonotonicTime.now()
            if outbound.writeBlockedSeconds(now: now) > options.writeStallTimeout.inSeconds {
                let error = RPCError(.unavailable, "the peer has not read from the connection for \(options.writeStallTimeout)")
                close(error)
                // The writer is stuck inside a write: closing the transport is what frees it.
                await transport.close()
                return
            }
            var stalled: [UInt32] = []
            let action = state.withLock { state -> Action in
                if state.closed != nil { return .none }
                // Every stalled stream goes in the same tick: one per tick let a peer keep
                // a hundred of them for minutes.
                for (id, stream) in state.streams
                where stream.failure == nil && stream.blockedSeconds(now: now) > options.stalledWindowTimeout.inSeconds {
                    stalled.append(id)
                }
                let settingsLimit = options.settingsTimeout.inSeconds
                if !state.receivedSettings, now.seconds(since: state.openedAt) > settingsLimit {
                    return .close(RPCError(.unavailable, "the peer sent no preface and SETTINGS within \(options.settingsTimeout)"), .settingsTimeout)
                }
                if !state.settingsAcked, now.seconds(since: state.openedAt) > settingsLimit {
                    return .close(RPCError(.unavailable, "the peer did not acknowledge our SETTINGS within \(options.settingsTimeout)"), .settingsTimeout)
                }
                if let oldest = state.pingsOutstanding.values.min(),
                   now.seconds(since: oldest) > options.keepaliveTimeout.inSeconds {
                    return .close(RPCError(.unavailable, "the peer did not answer a keepalive PING within \(options.keepaliveTimeout)"), .noError)
                }
                if side == .client, state.pingsOutstanding.isEmpty,
                   now.seconds(since: state.lastFrameReceived) >= options.keepaliveInterval.inSeconds {
                    let token = now.nanoseconds
                    state.pingsOutstanding[token] = now
                    return .ping(token)
                }
                if side == .server, state.streams.isEmpty, state.activeHandlers == 0,
                   now.seconds(since: state.lastStreamActivity) >= options.idleTimeout.inSeconds {
                    return .idle
                }
                return .none
            }
            for id in stalled {
                resetStream(id, code: .cancel, failure: RPCError(
                    .cancelled, "too little flow-control credit from the peer: \(options.stalledWindowTimeout) blocked without \(options.stalledWindowProgress) bytes of progress"))
                removeIfDone(id)
            }
            switch action {
            case .none: break
            case .ping(let token): outbound.enqueue { Frame.ping(token).encode(into: &$0) }
            case .close(let error, let code):
                sendGoaway(code: code, reason: error.message)
                close(error)
                return
            case .idle:
                sendGoaway(code: .noError, reason: "idle for \(options.idleTimeout)")
                close(RPCError(.unavailable, "the connection was idle for \(options.idleTimeout)"))
                return
            }
        }
    }

    /// Server: two-phase graceful drain (rpc.md). First a GOAWAY that only says "stop opening
    /// calls", then — after a PING round trip or 1 s — the GOAWAY with the real last stream;
    /// calls in flight run until `timeout`, after which they are reset and the connection closes.
    public func drain(timeout: Duration) async {
        outbound.enqueue { Frame.goaway(lastStreamID: UInt32(Int32.max), code: .noError, reason: "shutting down").encode(into: &$0) }
        let token = MonotonicTime.now().nanoseconds
        state.withLock { $0.pingsOutstanding[token] = .now() }
        outbound.enqueue { Frame.ping(token).encode(into: &$0) }
        _ = await poll(for: .seconds(1)) { state.withLock { $0.pingsOutstanding[token] == nil || $0.closed != nil } }
        let last = state.withLock { state -> UInt32 in
            state.drainLastStreamID = state.lastPeerStreamID
            return state.lastPeerStreamID
        }
        outbound.enqueue { Frame.goaway(lastStreamID: last, code: .noError, reason: "shutting down").encode(into: &$0) }
        let finished = await poll(for: timeout) { state.withLock { $0.activeHandlers == 0 || $0.closed != nil } }
        if !finished {
            let open = state.withLock { Array($0.streams.keys) }
            for id in open {
                resetStream(id, code: .cancel, failure: RPCError(.unavailable, "the server shut down before the call finished"))
            }
        }
        close(RPCError(.unavailable, "the server shut down"))
    }

    /// Re-checks `condition` every 10 ms until it holds (true) or `limit` passes (false).
    private func poll(for limit: Duration, _ condition: () -> Bool) async -> Bool {
        let deadline = MonotonicTime.now() + limit
        while !condition() {
            if MonotonicTime.now() >= deadline { return false }
            do { try await loop.sleep(for: .milliseconds(10)) } catch { return condition() }
        }
        return true
    }
}
