import CascadeAPI
@testable import CascadeCoordinator
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import CascadeWire
import Foundation
import Synchronization
import Testing

/// The resident set of a process (VmRSS in /proc/<pid>/status), in bytes.
func residentBytes(_ pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { throw TestFailure("no VmRSS for process \(pid)") }
    return kilobytes * 1024
}

/// An agent connection driven frame by frame over TLS: it advertises its own initial stream
/// window (0 for a reader that gives no credit), acknowledges the server's SETTINGS, and
/// records what arrives. For attacks the typed client cannot make.
final class RawAgentConnection: Sendable {
    struct Received {
        var dataBytes: [UInt32: Int] = [:]
        var resets: [UInt32: ErrorCode] = [:]
        var goaway: (code: ErrorCode, reason: String)?
        var pingAcks: Set<UInt64> = []
        var ended = false
        /// Why the read loop stopped, for a failure message.
        var endReason = ""
    }

    let transport: TLSConnection
    let received = Mutex(Received())
    private let streamIDs = Mutex<[UInt32]>([])

    private init(transport: TLSConnection) {
        self.transport = transport
    }

    static func connect(to address: SocketAddress, tls: TLSContext, initialStreamWindow: Int) async throws -> RawAgentConnection {
        let connection = RawAgentConnection(transport: try await tls.connect(to: address))
        var hello: [UInt8] = []
        Preface.encode(version: .current, into: &hello)
        Frame.settings([Setting(.initialStreamWindow, UInt32(initialStreamWindow))]).encode(into: &hello)
        try await connection.transport.write(hello)
        Task { await connection.readLoop() }
        return connection
    }

    private func readLoop() async {
        var decoder = FrameDecoder(maxFrameSize: 1 << 24, expectPreface: true)
        defer { received.withLock { $0.ended = true } }
        while true {
            let bytes: [UInt8]
            do {
                bytes = try await transport.read(maxLength: 256 * 1024)
            } catch {
                received.withLock { $0.endReason = "read: \(error)" }
                return
            }
            guard !bytes.isEmpty else { return }
            decoder.feed(bytes)
            do {
                while let item = try decoder.next() {
                    guard case .frame(let frame) = item else { continue }
                    let payload = try FramePayload(frame)
                    switch payload {
                    case .settings(ack: false, _):
                        try await send([.settingsAck])
                    case .data(let bytes, _):
                        received.withLock { $0.dataBytes[frame.streamID, default: 0] += bytes.count }
                    case .reset(let code):
                        received.withLock { $0.resets[frame.streamID] = code }
                    case .goaway(_, let code, let reason):
                        received.withLock { $0.goaway = (code, reason) }
                    case .ping(ack: true, let token):
                        received.withLock { _ = $0.pingAcks.insert(token) }
                    default:
                        break
                    }
                }
            } catch {
                received.withLock { $0.endReason = "\(error)" }
                return
            }
        }
    }

    /// The read loop (acknowledging SETTINGS) and the attack both write; a TLS connection takes
    /// one writer at a time, so a write that finds another in progress tries again.
    func send(_ frames: [Frame]) async throws {
        var bytes: [UInt8] = []
        for frame in frames { frame.encode(into: &bytes) }
        while true {
            do {
                try await transport.write(bytes)
                return
            } catch let error as NetError where error.code == .concurrentUse {
                await Task.yield()
            }
        }
    }

    /// Opens `count` FetchChunks calls for the whole of `version` (stream ids 1, 3, ...).
    func openFetches(_ count: Int, version: String) async throws {
        let head = CallHead(method: CoordinatorService.fetchChunks.name).serializedBytes()
        let request = FetchChunksRequest(version: version).serializedBytes()
        let framed = [0, 0, UInt8(request.count >> 8), UInt8(truncatingIfNeeded: request.count)] + request
        var frames: [Frame] = []
        var ids: [UInt32] = []
        for index in 0..<count {
            let id = UInt32(2 * index + 1)
            ids.append(id)
            frames.append(.headers(streamID: id, head))
            frames.append(.data(streamID: id, framed, endStream: true))
        }
        streamIDs.withLock { $0 = ids }
        try await send(frames)
    }

    /// One byte of credit on every stream it opened.
    func trickle() async throws {
        let ids = streamIDs.withLock { $0 }
        try await send(ids.map { .windowUpdate(streamID: $0, increment: 1) })
    }

    /// A PING round trip: when its ACK is back, every frame sent before it was handled.
    func roundTrip(_ token: UInt64) async throws {
        try await send([.ping(token)])
        _ = try await waitUntil(within: .seconds(15), "the PING ACK \(token)") {
            self.received.withLock { $0.pingAcks.contains(token) || $0.ended } ? true : nil
        }
    }

    func close() async {
        await transport.close()
    }
}

/// Fetches every chunk of `release` as a legitimate agent and returns the bytes, in order.
func fetchAll(_ client: RPCClient, _ version: String) async throws -> [UInt8] {
    let connection = try await client.connection()
    var chunks: [(UInt32, [UInt8])] = []
    try await connection.serverStreaming(
        CoordinatorService.fetchChunks, FetchChunksRequest(version: version), options: CallOptions(timeout: .seconds(30))
    ) { stream in
        for try await chunk in stream { chunks.append((chunk.index, chunk.data)) }
    }
    return chunks.sorted { $0.0 < $1.0 }.flatMap(\.1)
}

/// A counter tasks share.
final class Tally: Sendable {
    let count = Atomic<Int>(0)
}

@Suite("Coordinator abuse resistance", .serialized)
struct AbuseResistanceTests {
    @Test("FetchChunks readers that give no credit, or a byte at a time, on 8 connections cost the coordinator under 64 MiB; a legitimate agent is served whole")
    func creditStarvedFetches() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let coordinator = try await CoordinatorProcess.start(fixture, data: fixture.data.file("abuse-data"))
        defer { coordinator.process.kill9() }
        let pid = coordinator.process.pid
        let ops = try CoordinatorFixture.client(fixture.pki, coordinator.address, uri: "cascade://operator/alice")
        defer { ops.close() }
        let release = try fixture.release("2.0", size: 8 << 20, chunkSize: 1 << 20)
        try await fixture.push(release, via: ops)
        let good = try CoordinatorFixture.client(fixture.pki, coordinator.address, uri: "cascade://agent/good-1")
        defer { good.close() }
        // A first legitimate download, so the baseline includes the coordinator's steady state.
        #expect(try await fetchAll(good, "2.0") == release.bytes)
        let before = try residentBytes(pid)

        // 8 connections of one agent, 12 downloads each (96: under its 100 calls): the first
        // four never give credit, the others give one byte per stream at a time.
        let tls = try TLSContext(configuration: fixture.pki.configuration(uri: "cascade://agent/hoarder"), side: .client)
        var hoarders: [RawAgentConnection] = []
        for index in 0..<8 {
            let raw = try await RawAgentConnection.connect(to: coordinator.address, tls: tls, initialStreamWindow: 0)
            try await raw.openFetches(12, version: "2.0")
            try await raw.roundTrip(UInt64(index))
            hoarders.append(raw)
        }
        let trickling = Array(hoarders[4...])
        let trickle = Task {
            while !Task.isCancelled {
                for raw in trickling { try await raw.trickle() }
                try await Task.sleep(for: .milliseconds(200))  // the attacker's pace: under the small-update limit
            }
        }
        defer { trickle.cancel() }

        // Served whole while the attack runs (it needs the same store and the same chunks).
        #expect(try await fetchAll(good, "2.0") == release.bytes)
        // The coordinator's resident set over 3 s of attack (a measurement window, not a wait).
        var peak = before
        let end = ContinuousClock.now + .seconds(3)
        while ContinuousClock.now < end {
            peak = max(peak, try residentBytes(pid))
            try await Task.sleep(for: .milliseconds(50))  // sampling interval
        }
        print("coordinator RSS: \(before >> 20) MiB before, \(peak >> 20) MiB peak under 8 credit-starved connections x 12 FetchChunks")
        #expect(peak - before < 64 << 20)
        // The attack was really running: every connection is still open and not turned away.
        for raw in hoarders {
            let state = raw.received.withLock { ($0.goaway == nil, $0.ended) }
            #expect(state == (true, false), "\(raw.received.withLock { $0.endReason })")
        }
        trickle.cancel()
        for raw in hoarders { await raw.close() }
    }

    @Test("racing attaches and detaches of one agent's sessions never crash SessionHub, and each attach gets its own token")
    func sessionHubRace() async {
        let hub = SessionHub()
        let perTask = 20_000
        let tokens = await withTaskGroup(of: [UInt64].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var mine: [UInt64] = []
                    mine.reserveCapacity(perTask)
                    for _ in 0..<perTask {
                        let (token, _) = hub.attach("churner")
                        mine.append(token)
                        hub.detach("churner", token: token)
                    }
                    return mine
                }
            }
            var all: [UInt64] = []
            for await mine in group { all += mine }
            return all
        }
        // A token read back from a second lock could be another session's (or crash on nil).
        #expect(Set(tokens).count == 4 * perTask)
        #expect(hub.isConnected("churner") == false)
    }

    @Test("Session streams opened and dropped for 30 s from one agent over 4 connections: the coordinator stays up, bounded, and serving")
    func sessionChurn() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let coordinator = try await CoordinatorProcess.start(fixture, data: fixture.data.file("churn-data"))
        defer { coordinator.process.kill9() }
        let pid = coordinator.process.pid
        let churner = try FakeAgent(pki: fixture.pki, coordinator: coordinator.address, id: "churner", address: "127.0.1.20")
        _ = try await churner.register(cpu: 0.5)
        let before = try residentBytes(pid)

        let end = ContinuousClock.now + .seconds(30)
        let opened = Tally()
        let address = coordinator.address
        let pki = fixture.pki
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    while ContinuousClock.now < end {
                        // A connection of its own, dropped after a few bursts: the churn reconnects.
                        guard let client = try? CoordinatorFixture.client(pki, address, uri: "cascade://agent/churner"),
                              let connection = try? await client.connection()
                        else { continue }
                        for _ in 0..<8 where ContinuousClock.now < end {
                            await withTaskGroup(of: Void.self) { burst in
                                for _ in 0..<8 {
                                    burst.addTask {
                                        let session = Task {
                                            try await connection.bidirectional(CoordinatorService.session) { _, responses in
                                                for try await _ in responses {}
                                            }
                                        }
                                        opened.count.add(1, ordering: .relaxed)
                                        await Task.yield()
                                        session.cancel()
                                        _ = await session.result
                                    }
                                }
                            }
                        }
                        client.close()
                    }
                }
            }
        }
        let after = try residentBytes(pid)
        print("session churn: \(opened.count.load(ordering: .relaxed)) sessions opened and dropped; coordinator RSS \(before >> 20) MiB before, \(after >> 20) MiB after")
        #expect(opened.count.load(ordering: .relaxed) > 1000)
        // Same process, still answering.
        #expect(kill(pid, 0) == 0)
        #expect(try residentBytes(pid) - before < 64 << 20)
        let ops = try CoordinatorFixture.client(fixture.pki, coordinator.address, uri: "cascade://operator/alice")
        defer { ops.close() }
        let release = try fixture.release("3.0", size: 2 << 20, chunkSize: 1 << 20)
        try await fixture.push(release, via: ops)
        // A legitimate agent registers, holds a session, and downloads.
        let agent = try FakeAgent(pki: fixture.pki, coordinator: coordinator.address, id: "good-2", address: "127.0.1.21")
        defer { agent.disconnect() }
        #expect(try await agent.register(cpu: 0.9).agentID == "good-2")
        try await agent.connect()
        _ = try await agent.instruction("its assignment") { $0.assignment?.agentID == "good-2" }
        #expect(try await fetchAll(agent.client, "3.0") == release.bytes)
        #expect(coordinator.process.pid == pid && kill(pid, 0) == 0)
    }
}
