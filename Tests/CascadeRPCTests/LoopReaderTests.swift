import CascadeNet
import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Synchronization
import Testing

/// A loop-driven transport scripted in memory: it hands out its input a few bytes per read,
/// always "not drained", and reports all of it as buffered in user space. Like OpenSSL holding
/// records after the socket went quiet, it never calls a readiness callback: a reader that
/// waits for one instead of coming back for the buffered bytes stalls.
final class ScriptedStream: LoopDrivenStream {
    private struct State {
        var input: [UInt8]
        var offset = 0
        var output: [UInt8] = []
        var parked: ReadinessCallback?
    }

    let loop: EventLoop
    private let chunk: Int
    private let state: Mutex<State>

    init(input: [UInt8], chunk: Int, loop: EventLoop) {
        self.loop = loop
        self.chunk = chunk
        state = Mutex(State(input: input))
    }

    var written: [UInt8] { state.withLock { $0.output } }
    var hasBufferedInput: Bool { state.withLock { $0.offset < $0.input.count } }

    func readNow(maxLength: Int) -> ImmediateIO {
        state.withLock { state in
            let count = min(maxLength, chunk, state.input.count - state.offset)
            guard count > 0 else { return .wouldBlock(wantsWrite: false) }
            defer { state.offset += count }
            return .read(Array(state.input[state.offset..<(state.offset + count)]), drained: false)
        }
    }

    func readNow(into buffer: UnsafeMutableRawBufferPointer) -> ImmediateIO {
        guard case .read(let bytes, let drained) = readNow(maxLength: buffer.count) else { return .wouldBlock(wantsWrite: false) }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        return .filled(bytes.count, drained: drained)
    }

    func writeNow(_ bytes: [UInt8], from offset: Int) -> ImmediateIO {
        state.withLock { $0.output += bytes[offset...] }
        return .wrote(bytes.count - offset)
    }

    /// A quiet socket: never ready; told "never" when the stream closes, as a real one is.
    func whenReadable(_ callback: @escaping ReadinessCallback) {
        state.withLock { $0.parked = callback }
    }
    func waitUntilWritable() async throws {}
    func read(maxLength: Int) async throws -> [UInt8] { [] }
    func write(_ bytes: [UInt8]) async throws { state.withLock { $0.output += bytes } }
    func close() async {
        guard let parked = state.withLock({ state -> ReadinessCallback? in
            defer { state.parked = nil }
            return state.parked
        }) else { return }
        loop.nextTurn { parked(false) }
    }
}

@Suite("Loop reader")
struct LoopReaderTests {
    @Test("a reader that spends its read budget with input still buffered comes back for it instead of waiting on the socket")
    func comesBackForBufferedInput() async throws {
        let router = RPCRouter()
        router.unaryImmediate(ImmediateMethods.echo) { request, _ in Note(text: request.text, number: request.number + 1) }
        // A 4 KiB request, read 64 bytes at a time: far more reads than one callback may make.
        var input: [UInt8] = []
        Preface.encode(version: .current, into: &input)
        Frame.settings([]).encode(into: &input)
        Frame.headers(streamID: 1, callHead(ImmediateMethods.echo.name)).encode(into: &input)
        let body = Note(text: String(repeating: "m", count: 4096), number: 41).serializedBytes()
        let length = UInt32(body.count)
        let message = [UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                       UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)] + body
        Frame.data(streamID: 1, message, endStream: true).encode(into: &input)
        let loop = EventLoopGroup.shared.next()
        let stream = ScriptedStream(input: input, chunk: 64, loop: loop)
        let server = RPCConnection(
            transport: stream, side: .server, peer: try PeerIdentity(role: .agent, id: "scripted"), router: router, loop: loop)
        let running = Task(executorPreference: loop) { await server.run() }
        defer { server.close() }
        // The answer: DATA with the echoed message, then OK trailers, on stream 1.
        let trailers = try await waitUntil(within: .seconds(10), "the server to answer the whole request") { () -> CallTrailers? in
            var decoder = FrameDecoder(maxFrameSize: 1 << 20, expectPreface: true)
            decoder.feed(stream.written)
            while case let item? = try? decoder.next() {
                if case .frame(let frame) = item, frame.type == .trailers, frame.streamID == 1 {
                    return try? CallTrailers(serializedBytes: frame.payload)
                }
            }
            return nil
        }
        #expect(trailers.code == .ok)
        #expect(!stream.hasBufferedInput)
        server.close()
        _ = await running.value
    }
}
