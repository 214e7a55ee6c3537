import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeWire
import Synchronization

/// A benchmark message: opaque bytes and a number. The payload is a slice of the received
/// message (no copy), as a release chunk would be.
struct BenchMessage: WireMessage {
    var payload: ArraySlice<UInt8> = []
    var count: UInt64 = 0

    init(payload: ArraySlice<UInt8> = [], count: UInt64 = 0) {
        self.payload = payload
        self.count = count
    }

    init(from reader: inout MessageReader) throws(WireError) {
        while let field = try reader.next() {
            switch field.number {
            case 1: payload = try field.byteSlice()
            case 2: count = try field.uint64()
            default: continue
            }
        }
    }

    func encode(to writer: inout CascadeWire.MessageWriter) {
        if !payload.isEmpty { writer.writeBytes(field: 1, payload) }
        if count != 0 { writer.writeVarint(field: 2, count) }
    }
}

/// The RPC benchmark: unary latency and rate, and streaming throughput, over mutual TLS.
public enum RPCBench {
    static let everyone: Set<PeerIdentity.Role> = [.agent, .coordinator, .operator]
    static let echo = RPCMethod<BenchMessage, BenchMessage>("cascade.Bench/Echo", allowedRoles: everyone)
    static let download = RPCMethod<BenchMessage, BenchMessage>("cascade.Bench/Download", allowedRoles: everyone)

    /// `rpc-server --bind IP --port P --ca F --cert F --key F`: serves until killed.
    public static func server(_ arguments: ArraySlice<String>) async throws {
        let options = try Options(arguments)
        let tls = try TLSContext(configuration: TLSBulk.configuration(options), side: .server)
        let router = RPCRouter()
        router.unaryImmediate(echo) { request, _ in request }
        router.serverStreaming(download) { request, writer, _ in
            let block = BenchMessage(payload: TLSBulk.pattern(offset: 0, count: TLSBulk.chunkSize)[...])
            var sent: UInt64 = 0
            while sent < request.count {
                if request.count - sent >= UInt64(TLSBulk.chunkSize) {
                    try await writer.write(block)
                } else {
                    try await writer.write(BenchMessage(payload: block.payload.prefix(Int(request.count - sent))))
                }
                sent += UInt64(TLSBulk.chunkSize)
            }
        }
        let address = try SocketAddress(ip: options.string("bind", default: "127.0.0.1"), port: UInt16(options.int("port", default: 0)))
        let server = try RPCServer(bindingTo: address, tls: tls, router: router)
        server.start()
        emitLine("listening \(server.localAddress.port)")
        let loop = EventLoopGroup.shared.next()
        while true { try await loop.sleep(for: .seconds(3600)) }
    }

    /// `rpc-client --host IP --port P --ca F --cert F --key F --mode latency|rate|stream
    ///  [--calls N] [--size S] [--in-flight K] [--bytes N]`
    public static func client(_ arguments: ArraySlice<String>) async throws {
        let options = try Options(arguments)
        let tls = try TLSContext(configuration: TLSBulk.configuration(options), side: .client)
        let target = try SocketAddress(ip: options.string("host", default: "127.0.0.1"), port: UInt16(options.int("port")))
        let client = RPCClient(target: target, tls: tls)
        defer { client.close() }
        let connection = try await client.connection()
        let request = BenchMessage(payload: [UInt8](repeating: 0x5A, count: try options.int("size", default: 100))[...])
        switch try options.string("mode") {
        case "latency":
            let calls = try options.int("calls", default: 20_000)
            // The caller runs on the connection's loop, as a latency-sensitive client would.
            let samples = try await withTaskExecutorPreference(connection.eventLoop) {
                for _ in 0..<1000 { _ = try await connection.unary(echo, request) }
                var samples: [Double] = []
                samples.reserveCapacity(calls)
                for _ in 0..<calls {
                    let start = MonotonicTime.now()
                    _ = try await connection.unary(echo, request)
                    samples.append(MonotonicTime.now().seconds(since: start) * 1e6)
                }
                return samples.sorted()
            }
            let p50 = samples[calls / 2]
            let p99 = samples[min(calls - 1, calls * 99 / 100)]
            emitLine("result mode=latency calls=\(calls) size=\(request.payload.count) p50_us=\(format(p50)) p99_us=\(format(p99))")
        case "rate":
            let calls = try options.int("calls", default: 100_000)
            let inFlight = try options.int("in-flight", default: 64)
            let issued = Counter()
            let start = MonotonicTime.now()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<inFlight {
                    group.addTask {
                        while issued.next() < calls {
                            _ = try await connection.unary(echo, request)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let seconds = MonotonicTime.now().seconds(since: start)
            emitLine("result mode=rate calls=\(calls) seconds=\(format(seconds)) calls_per_s=\(format(Double(calls) / seconds))")
        case "stream":
            let bytes = try options.int("bytes", default: 1 << 30)
            let hasher = SHA256()
            var received = 0
            let start = MonotonicTime.now()
            let cpuStart = processCPUSeconds()
            try await connection.serverStreaming(download, BenchMessage(count: UInt64(bytes))) { messages in
                for try await message in messages {
                    hasher.update(message.payload)
                    _ = hasher.finalize()
                    received += message.payload.count
                }
            }
            let seconds = MonotonicTime.now().seconds(since: start)
            let cpu = processCPUSeconds() - cpuStart
            emitLine("result mode=stream bytes=\(received) seconds=\(format(seconds)) cpu=\(format(cpu)) mbps=\(format(Double(received) / 1e6 / seconds))")
        case let mode:
            throw BenchError("--mode must be latency, rate or stream, not \"\(mode)\"")
        }
    }
}

/// A shared call counter (a class: non-copyable locals in async code upset this compiler).
final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    /// The count before this call.
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}

extension RPCBench {
    /// `rpc-inproc [--calls N] [--size S]`: unary calls between a client and a server
    /// connection joined by an in-memory pipe on one event loop. No sockets and no TLS, so the
    /// CPU per call is what the RPC layer itself costs (both ends together).
    public static func inProcess(_ arguments: ArraySlice<String>) async throws {
        let options = try Options(arguments)
        let calls = try options.int("calls", default: 50_000)
        let request = BenchMessage(payload: [UInt8](repeating: 0x5A, count: try options.int("size", default: 100))[...])
        let loop = EventLoopGroup.shared.next()
        let router = RPCRouter()
        router.unaryImmediate(echo) { request, _ in request }
        let (near, far) = InMemoryByteStream.pair()
        let peer = try PeerIdentity(role: .agent, id: "bench")
        let server = RPCConnection(transport: far, side: .server, peer: peer, router: router, loop: loop)
        let client = RPCConnection(transport: near, side: .client, peer: peer, loop: loop)
        Task(executorPreference: loop) { await server.run() }
        Task(executorPreference: loop) { await client.run() }
        let (cpu, samples) = try await withTaskExecutorPreference(loop) {
            for _ in 0..<1000 { _ = try await client.unary(echo, request) }
            var samples: [Double] = []
            samples.reserveCapacity(calls)
            let cpuStart = processCPUSeconds()
            for _ in 0..<calls {
                let start = MonotonicTime.now()
                _ = try await client.unary(echo, request)
                samples.append(MonotonicTime.now().seconds(since: start) * 1e6)
            }
            return (processCPUSeconds() - cpuStart, samples.sorted())
        }
        client.close()
        emitLine("result mode=inproc calls=\(calls) size=\(request.payload.count) p50_us=\(format(samples[calls / 2])) cpu_us_per_call=\(format(cpu / Double(calls) * 1e6))")
    }
}
