public import CascadeNet
public import CascadeWire
import Synchronization

/// Calls multiplexed over one byte stream (Protocols/rpc.md over Protocols/wire.md), for
/// either side. On a loop-driven transport (TLS on its own loop) the loop thread reads in
/// readiness callbacks and writes at the end of each turn; otherwise a reader task decodes
/// frames and a writer task drains the outbound queue. Flow control bounds what a slow reader
/// makes us buffer.
public final class RPCConnection: Sendable {
    public enum Side: Sendable { case client, server }

    public let side: Side
    /// The peer's verified identity (nil only on in-memory test transports without one).
    public let peer: PeerIdentity?
    /// Where the peer connects from, on a TLS transport.
    public let endpoint: PeerEndpoint?
    let transport: any ByteStream
    let loop: EventLoop
    let localSettings: Settings
    let options: RPCOptions
    let router: RPCRouter?
    /// The last call head this server side decoded (`recognizedHead`).
    let lastHead = Mutex<RecognizedHead?>(nil)
    /// The last plain call head this client side encoded (`plainHead`).
    let lastPlainHead = Mutex<(method: String, block: [UInt8])?>(nil)
    let clientInterceptors: [any ClientInterceptor]
    /// Server: told how each call ends (metrics).
    let observer: (any RPCServerObserver)?
    let outbound: OutboundQueue
    /// The transport, when it can be read and written on `loop`'s thread without tasks.
    let direct: (any LoopDrivenStream)?
    let state: Mutex<ConnectionState>
    /// Metadata entries this server side decoded from call heads; a test hook showing that a
    /// refused call's metadata is never decoded (rpc.md §4.5).
    let metadataEntriesDecoded = Atomic<Int>(0)

    public convenience init(
        transport: any ByteStream, side: Side, peer: PeerIdentity?, settings: Settings = .rpcDefaults,
        router: RPCRouter? = nil, options: RPCOptions = RPCOptions(), loop: EventLoop = EventLoopGroup.shared.next(),
        interceptors: [any ClientInterceptor] = []
    ) {
        self.init(transport: transport, side: side, peer: peer, settings: settings, router: router, options: options,
                  loop: loop, interceptors: interceptors, identity: nil)
    }

    init(
        transport: any ByteStream, side: Side, peer: PeerIdentity?, settings: Settings, router: RPCRouter?,
        options: RPCOptions, loop: EventLoop, interceptors: [any ClientInterceptor], identity: IdentitySlot?,
        observer: (any RPCServerObserver)? = nil
    ) {
        self.observer = observer
        self.options = options
        self.clientInterceptors = interceptors
        self.transport = transport
        self.side = side
        self.peer = peer
        self.endpoint = (transport as? TLSConnection)?.endpoint
        self.localSettings = settings
        self.router = router
        self.loop = loop
        let direct = (transport as? any LoopDrivenStream).flatMap { $0.loop === loop ? $0 : nil }
        self.direct = direct
        self.outbound = OutboundQueue(direct: direct)
        var initial = ConnectionState(nextStreamID: side == .client ? 1 : 2)
        initial.identity = identity
        self.state = Mutex(initial)
        // The preface and our settings go first, before any call can be opened.
        outbound.enqueue { bytes in
            Preface.encode(version: .current, into: &bytes)
            Frame.settings(settings, omittingDefaults: true).encode(into: &bytes)
        }
    }

    /// Runs the connection until it closes: sends the preface and settings, then reads.
    /// Returns the reason it ended.
    @discardableResult
    public func run() async -> RPCError {
        // The writer drains the queue; once the queue is closed and empty it closes the
        // transport, which also ends the read loop below.
        let writer = Task(executorPreference: loop) { [outbound, transport] in
            while let batch = await outbound.nextBatch() {
                do {
                    try await transport.write(batch)
                } catch {
                    self.fail(RPCError.connectionFailed("writing to the connection failed: ", error))
                    break
                }
            }
            if let error = outbound.writeFailure {
                self.fail(RPCError.connectionFailed("writing to the connection failed: ", error))
            }
            await transport.close()
        }
        let keepalive = Task(executorPreference: loop) { await self.keepaliveLoop() }
        let reason: RPCError
        if let direct {
            reason = await withUnsafeContinuation { (continuation: UnsafeContinuation<RPCError, Never>) in
                let reader = LoopReader(connection: self, stream: direct, done: continuation)
                // Whatever the handshake left in OpenSSL's buffers is read first, on the loop.
                direct.loop.beforeNextPoll { reader.readable(true) }
            }
        } else {
            reason = await readWithTask()
        }
        fail(reason)
        // Keepalive stays on until the writer is done: its write-stall check is what frees a
        // writer stuck on a peer that stopped reading.
        await writer.value
        keepalive.cancel()
        await transport.close()
        // The first recorded reason wins (a local close also ends the read loop with EOF).
        return state.withLock { $0.closed } ?? reason
    }

    /// The read loop for transports that are not loop-driven: a task awaits each read.
    private func readWithTask() async -> RPCError {
        var decoder = FrameDecoder(maxFrameSize: localSettings.maxFrameSize, expectPreface: true)
        while true {
            let bytes: [UInt8]
            do {
                bytes = try await transport.read(maxLength: 256 * 1024)
            } catch {
                return RPCError.connectionFailed("the connection failed: ", error)
            }
            if bytes.isEmpty { return RPCError(.unavailable, "the peer closed the connection") }
            decoder.feed(bytes)
            if let reason = consume(&decoder) { return reason }
        }
    }

    /// Handles every complete frame the decoder holds. Returns why the connection must end,
    /// or nil to go on reading; a stream error resets that stream and decoding continues.
    func consume(_ decoder: inout FrameDecoder) -> RPCError? {
        while true {
            do {
                guard let item = try decoder.next() else { return nil }
                if case .frame(let frame) = item { try handle(frame) }
            } catch {
                let wire = error
                if wire.isConnectionError || wire.code == .enhanceYourCalm {
                    // A peer that does not speak the protocol gets no frame at all (wire.md §3).
                    if wire.kind != .badMagic { sendGoaway(code: wire.code, reason: wire.message) }
                    return RPCError(.unavailable, "protocol error from the peer: \(wire.message)")
                }
                resetStream(wire.streamID, code: wire.code, failure: RPCError(.internal, wire.message))
            }
        }
    }

    /// Ends the connection now: calls fail with `reason`, queued frames are still written,
    /// then the transport closes.
    public func close(_ reason: RPCError = RPCError(.unavailable, "the connection was closed")) {
        fail(reason)
    }

    /// The loop this connection's tasks run on; callers that make many small calls can run
    /// there too (`withTaskExecutorPreference(connection.eventLoop)`) to avoid thread hand-offs.
    public var eventLoop: EventLoop { loop }

    /// Bytes received and held for the application: partial messages being assembled and
    /// messages not yet taken, over every stream. Flow control bounds it (rpc.md §15.1).
    var bufferedByteCount: Int {
        state.withLock { state in
            state.streams.values.reduce(0) { $0 + $1.deframer.bufferedByteCount + $1.queuedBytes }
        }
    }

    /// Server handlers still running (cancelled ones included).
    public var activeHandlerCount: Int { state.withLock { $0.activeHandlers } }

    /// Server: turns the connection away before any call (a cap of rpc.md §15.1): GOAWAY
    /// with last stream id 0 and `reason`, HEADERS that follow are ignored, and the connection
    /// closes after a grace second, reading meanwhile so the GOAWAY is not lost to a TCP reset.
    func refuse(code: ErrorCode, reason: String) {
        state.withLock { $0.drainLastStreamID = 0 }
        outbound.enqueue { Frame.goaway(lastStreamID: 0, code: code, reason: reason).encode(into: &$0) }
        loop.schedule(after: .seconds(1)) { [weak self] in
            self?.close(RPCError(.unavailable, "refused: \(reason)"))
        }
    }

    /// Ends every call with `error` and stops writing after what is queued.
    func fail(_ error: RPCError) {
        var effects = Effects()
        state.withLock { state in
            if state.closed == nil { state.closed = error }
            for (id, _) in state.streams { Self.failStream(&state, id, error, &effects) }
            let waiters = state.slotWaiters
            state.slotWaiters = []
            for entry in waiters { effects { entry.waiter.resume(throwing: error) } }
        }
        outbound.close(error)
        effects.run()
    }

    func sendGoaway(code: ErrorCode, reason: String) {
        let last = state.withLock { $0.lastPeerStreamID }
        outbound.enqueue { Frame.goaway(lastStreamID: last, code: code, reason: reason).encode(into: &$0) }
    }

    /// Sends RESET for a stream and fails it locally.
    func resetStream(_ id: UInt32, code: ErrorCode, failure: RPCError) {
        var effects = Effects()
        state.withLock { state in Self.failStream(&state, id, failure, &effects) }
        outbound.enqueue { Frame.reset(streamID: id, code: code).encode(into: &$0) }
        effects.run()
    }

    /// Marks a stream failed, wakes whoever waits on it, cancels a server handler, and removes
    /// it once both halves are done. Called with the lock held.
    static func failStream(_ state: inout ConnectionState, _ id: UInt32, _ error: RPCError, _ effects: inout Effects) {
        guard let stream = state.streams[id] else { return }
        if stream.failure == nil { stream.failure = error }
        stream.observeEnd(error.code)
        if let receiver = stream.receiver {
            stream.receiver = nil
            effects { receiver.resume(throwing: error) }
        }
        if let waiter = stream.unaryWaiter {
            stream.unaryWaiter = nil
            effects { waiter.resume(throwing: error) }
        }
        if let waiter = stream.windowWaiter {
            stream.windowWaiter = nil
            effects { waiter.resume(throwing: error) }
        }
        if let handler = stream.handler { effects { handler.cancel() } }
        // An immediate call that never got to run frees its slot here.
        if stream.immediate != nil {
            stream.immediate = nil
            state.activeHandlers -= 1
            state.identity?.releaseStream()
        }
    }
}

struct ConnectionState {
    var streams: [UInt32: StreamState] = [:]
    var nextStreamID: UInt32
    var lastPeerStreamID: UInt32 = 0
    var peerSettings = Settings()
    var receivedSettings = false
    /// The peer acknowledged our SETTINGS.
    var settingsAcked = false
    var sendWindow = Settings.defaults.initialConnectionWindow
    var receiveUncredited = 0
    var goawayLastStreamID: UInt32?
    /// The first GOAWAY's code and reason, for the calls it turns away (e.g. a cap, §15.1).
    var goawayReason: String?
    var closed: RPCError?
    /// Client calls waiting for the peer's MAX_CONCURRENT_STREAMS to allow one more.
    var slotWaiters: [(id: UInt64, waiter: UnsafeContinuation<Void, any Error>)] = []
    var nextSlotWaiterID: UInt64 = 0
    var openClientStreams = 0
    /// Handlers still running, including cancelled ones (they count against the limit).
    var activeHandlers = 0
    /// The identity's share (server): released with each handler slot, under this lock.
    var identity: IdentitySlot?
    /// Set once this side sent its final GOAWAY: streams above it are refused.
    var drainLastStreamID: UInt32?
    var lastFrameReceived = MonotonicTime.now()
    let openedAt = MonotonicTime.now()
    var lastStreamActivity = MonotonicTime.now()
    var pingsOutstanding: [UInt64: MonotonicTime] = [:]
    var limits = AbuseCounters()
}

/// A call head already decoded and validated, with the method it named.
struct RecognizedHead: Sendable {
    let block: [UInt8]
    let head: CallHead
    let method: RPCRouter.Registered
    let generation: Int
}
