import CascadeNet
import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Testing

/// A hand-driven client: raw bytes in, the server's frames out.
struct RawPeer {
    let wire: InMemoryByteStream
    let server: RPCConnection
    let finished: Task<RPCError, Never>

    init(options: RPCOptions = RPCOptions(), settings: Settings = Settings()) throws {
        let (a, b) = InMemoryByteStream.pair(capacity: 8 << 20)
        wire = a
        let server = RPCConnection(
            transport: b, side: .server, peer: try PeerIdentity(role: .agent, id: "raw"), settings: settings,
            router: makeRouter(log: ServerLog()), options: options)
        self.server = server
        finished = Task { await server.run() }
    }

    /// Preface and an empty SETTINGS, as a well-behaved client starts.
    func hello() async throws {
        var bytes: [UInt8] = []
        Preface.encode(version: .current, into: &bytes)
        Frame.settings([]).encode(into: &bytes)
        try await wire.write(bytes)
    }

    func send(_ frames: [Frame]) async throws {
        var bytes: [UInt8] = []
        for frame in frames { frame.encode(into: &bytes) }
        try await wire.write(bytes)
    }

    /// Reads the server's frames until one matches (or the server hangs up / time runs out).
    func frame(within limit: Duration = .seconds(10), where match: @escaping @Sendable (Frame) -> Bool) async throws -> Frame? {
        try await withTimeout(limit, on: EventLoopGroup.shared.next(), what: "waiting for the server's frame") {
            var decoder = FrameDecoder(maxFrameSize: 1 << 24, expectPreface: true)
            while true {
                let bytes = try await wire.read(maxLength: 65536)
                if bytes.isEmpty { return nil }
                decoder.feed(bytes)
                while let item = try decoder.next() {
                    if case .frame(let frame) = item, match(frame) { return frame }
                }
            }
        }
    }

    func goaway() async throws -> (code: ErrorCode, reason: String)? {
        guard let frame = try await frame(where: { $0.type == .goaway }),
              case .goaway(_, let code, let reason) = try FramePayload(frame) else { return nil }
        return (code, reason)
    }
}

func callHead(_ method: String, timeoutMicroseconds: UInt64 = 0) -> [UInt8] {
    CallHead(method: method, timeoutMicroseconds: timeoutMicroseconds).serializedBytes()
}

@Suite("RPC abuse limits")
struct AbuseTests {
    @Test("a PING flood is answered with GOAWAY ENHANCE_YOUR_CALM")
    func pingFlood() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        try await peer.send((0..<60).map { Frame.ping(UInt64($0)) })
        let goaway = try #require(try await peer.goaway())
        #expect(goaway.code == .enhanceYourCalm)
        #expect(goaway.reason.contains("PING"))
        #expect(await peer.finished.value.code == .unavailable)
    }

    @Test("a SETTINGS flood is answered with GOAWAY ENHANCE_YOUR_CALM")
    func settingsFlood() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        try await peer.send((0..<25).map { _ in Frame.settings([Setting(.maxConcurrentStreams, 50)]) })
        #expect(try await peer.goaway()?.code == .enhanceYourCalm)
    }

    @Test("rapid open-and-reset is answered with GOAWAY ENHANCE_YOUR_CALM")
    func rapidReset() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        var frames: [Frame] = []
        for index in 0..<250 {
            let id = UInt32(2 * index + 1)
            frames.append(.headers(streamID: id, callHead("cascade.Test/Stall")))
            frames.append(.reset(streamID: id, code: .cancel))
        }
        try await peer.send(frames)
        let goaway = try #require(try await peer.goaway())
        #expect(goaway.code == .enhanceYourCalm)
        #expect(goaway.reason.contains("reset"))
    }

    @Test("a flood of empty DATA frames is answered with GOAWAY ENHANCE_YOUR_CALM")
    func emptyFrames() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        try await peer.send([.headers(streamID: 1, callHead("cascade.Test/Sum"))] + (0..<1100).map { _ in Frame.data(streamID: 1, []) })
        #expect(try await peer.goaway()?.code == .enhanceYourCalm)
    }

    @Test("WINDOW_UPDATE of 0 on the connection is a protocol error; past 2^31-1 a flow-control error")
    func windowUpdates() async throws {
        let zero = try RawPeer()
        try await zero.hello()
        try await zero.send([Frame(type: .windowUpdate, streamID: 0, payload: [0, 0, 0, 0])])
        #expect(try await zero.goaway()?.code == .protocolError)

        let overflow = try RawPeer()
        try await overflow.hello()
        try await overflow.send([.windowUpdate(streamID: 0, increment: 0x7FFF_FFFF)])
        #expect(try await overflow.goaway()?.code == .flowControlError)
    }

    @Test("1-byte window updates in bulk are answered with GOAWAY ENHANCE_YOUR_CALM")
    func tinyWindowUpdates() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        try await peer.send((0..<1100).map { _ in Frame.windowUpdate(streamID: 0, increment: 1) })
        #expect(try await peer.goaway()?.code == .enhanceYourCalm)
    }

    @Test("stream-id misuse is a protocol error", arguments: [
        ("an even stream id", [UInt32(2)]),
        ("a stream id going backwards", [UInt32(5), 3]),
        ("a reused stream id", [UInt32(1), 1]),
    ])
    func streamIDs(label: String, ids: [UInt32]) async throws {
        let peer = try RawPeer()
        try await peer.hello()
        try await peer.send(ids.map { Frame.headers(streamID: $0, callHead("cascade.Test/Echo")) })
        let goaway = try #require(try await peer.goaway(), "no GOAWAY for \(label)")
        #expect(goaway.code == .protocolError)
    }

    @Test("a frame over MAX_FRAME_SIZE is refused from its header with FRAME_SIZE_ERROR")
    func oversizedFrame() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        // Only the header: the server must not wait for (or buffer) the 16 MiB payload.
        try await peer.wire.write([0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01])
        #expect(try await peer.goaway()?.code == .frameSizeError)
    }

    @Test("the first frame must be SETTINGS")
    func firstFrame() async throws {
        let peer = try RawPeer()
        var bytes: [UInt8] = []
        Preface.encode(version: .current, into: &bytes)
        Frame.ping(1).encode(into: &bytes)
        try await peer.wire.write(bytes)
        #expect(try await peer.goaway()?.code == .protocolError)
    }

    @Test("a bad preface closes the connection without a reply frame: the peer gets only the server's own preface and SETTINGS, sent before it read anything")
    func badPreface() async throws {
        let peer = try RawPeer()
        try await peer.wire.write(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        // Everything the server ever sends, up to its close (wire.md §3: bad-magic).
        var decoder = FrameDecoder(maxFrameSize: 1 << 24, expectPreface: true)
        var items: [DecodedItem] = []
        while true {
            let bytes = try await peer.wire.read(maxLength: 65536)
            if bytes.isEmpty { break }
            decoder.feed(bytes)
            while let item = try decoder.next() { items.append(item) }
        }
        #expect(items.count == 2, "\(items)")
        guard case .preface(let version)? = items.first else {
            Issue.record("the server's first bytes are not its preface: \(items)")
            return
        }
        #expect(version.major == 1)
        guard case .frame(let settings)? = items.last else {
            Issue.record("the server's preface is not followed by a frame: \(items)")
            return
        }
        #expect(settings.type == .settings && !settings.flags.contains(.ack))
        #expect(await peer.finished.value.code == .unavailable)
    }

    @Test("a message over MAX_MESSAGE_SIZE is refused from its length prefix with RESOURCE_EXHAUSTED")
    func oversizedMessage() async throws {
        let peer = try RawPeer()
        try await peer.hello()
        // Claims 1 GiB; only the 4-byte prefix is sent.
        try await peer.send([.headers(streamID: 1, callHead("cascade.Test/Echo")), .data(streamID: 1, [0x40, 0, 0, 0])])
        let trailers = try #require(try await peer.frame(where: { $0.type == .trailers }))
        let status = try CallTrailers(serializedBytes: trailers.payload)
        #expect(status.code == .resourceExhausted)
        #expect(status.message.contains("1073741824"))
        // The handler waiting for that message is cancelled, not left holding a slot.
        _ = try await waitUntil(within: .seconds(10), "the handler to end") { peer.server.activeHandlerCount == 0 ? true : nil }
    }

    @Test("a server refuses calls beyond MAX_CONCURRENT_STREAMS with REFUSED_STREAM")
    func concurrencyLimit() async throws {
        var settings = Settings()
        settings.maxConcurrentStreams = 2
        let peer = try RawPeer(settings: settings)
        try await peer.hello()
        try await peer.send((0..<3).map { Frame.headers(streamID: UInt32(2 * $0 + 1), callHead("cascade.Test/Stall")) })
        let reset = try #require(try await peer.frame(where: { $0.type == .reset }))
        #expect(reset.streamID == 5)
        #expect(try FramePayload(reset) == .reset(.refusedStream))
    }
}

@Suite("RPC settings and response order")
struct SettingsAndOrderTests {
    @Test("a peer that never acknowledges our SETTINGS gets GOAWAY SETTINGS_TIMEOUT")
    func settingsAckTimeout() async throws {
        var options = RPCOptions()
        options.settingsTimeout = .milliseconds(100)
        let peer = try RawPeer(options: options)
        try await peer.hello()  // preface and SETTINGS, but never a SETTINGS ACK
        let goaway = try #require(try await peer.goaway())
        #expect(goaway.code == .settingsTimeout)
        #expect(goaway.reason.contains("did not acknowledge"))
    }

    @Test("a server that ends a call with END_STREAM instead of trailers fails it INTERNAL")
    func endStreamFromServer() async throws {
        let server = RawServer()
        let call = Task { try await server.client.unary(TestMethods.echo, Note(text: "x")) }
        try await server.awaitRequest(on: 1)
        try await server.reply([Frame.data(streamID: 1, [0, 0, 0, 0], endStream: true)])
        let error = await #expect(throws: RPCError.self) { _ = try await call.value }
        #expect(error?.code == .internal)
        #expect(error?.message.contains("END_STREAM") == true)
    }
}

/// A hand-played server: a real client connection on one end, raw frames on the other.
struct RawServer {
    let wire: InMemoryByteStream
    let client: RPCConnection
    private let decoder = DecoderBox()

    init() {
        let (a, b) = InMemoryByteStream.pair()
        client = RPCConnection(transport: a, side: .client, peer: nil)
        wire = b
        let client = self.client
        Task { await client.run() }
    }

    /// Reads the client's frames until one matches; returns it.
    @discardableResult
    func frame(where match: (Frame) -> Bool) async throws -> Frame {
        while true {
            if let frame = try decoder.next(where: match) { return frame }
            let bytes = try await wire.read(maxLength: 65536)
            guard !bytes.isEmpty else { throw TestFailure("the client closed the connection") }
            decoder.feed(bytes)
        }
    }

    /// Waits for the request message of a unary call on `streamID`.
    func awaitRequest(on streamID: UInt32) async throws {
        try await frame { $0.type == .data && $0.streamID == streamID }
    }

    /// Sends frames as they are (after `reply` has sent the preface).
    func send(_ frames: [Frame]) async throws {
        var bytes: [UInt8] = []
        for frame in frames { frame.encode(into: &bytes) }
        try await wire.write(bytes)
    }

    /// Sends the server's preface and settings (and our ACK), then `frames`.
    func reply(_ frames: [Frame]) async throws {
        var bytes: [UInt8] = []
        Preface.encode(version: .current, into: &bytes)
        Frame.settings([]).encode(into: &bytes)
        Frame.settingsAck.encode(into: &bytes)
        for frame in frames { frame.encode(into: &bytes) }
        try await wire.write(bytes)
    }
}

/// The decoder of a RawServer; a class so the struct's methods can feed it.
final class DecoderBox: @unchecked Sendable {
    // Used by one test task at a time (RawServer is not shared across tasks).
    private var decoder = FrameDecoder(maxFrameSize: 1 << 24, expectPreface: true)
    private var pending: [Frame] = []

    func feed(_ bytes: [UInt8]) { decoder.feed(bytes) }

    func next(where match: (Frame) -> Bool) throws -> Frame? {
        while let item = try decoder.next() {
            if case .frame(let frame) = item, match(frame) { return frame }
        }
        return nil
    }
}
