import CascadeAPI
import CascadeNet
import CascadeRPC
import Foundation
import Synchronization

/// CASCADE_BENCH_DEBUG=1 prints why sessions end.
let debugSessions = ProcessInfo.processInfo.environment["CASCADE_BENCH_DEBUG"] != nil

/// A lightweight simulated agent: an RPCClient from its own loopback address with its own
/// certificate, Register, then a Session stream carrying heartbeats, re-established with
/// jittered backoff whenever it fails (as the agent runtime's coordinator link does). No
/// member listener, no downloads: what the coordinator sees of an idle agent.
final class IdleSession: Sendable {
    let id: String
    let address: String
    let client: RPCClient
    private let backoff: Backoff
    /// Where the driver's ticks go: the current session's stream (the newest tick only, so
    /// nothing piles up). A new stream per session: a cancelled iteration finishes an
    /// AsyncStream for good.
    private let tick = Mutex<AsyncStream<Void>.Continuation?>(nil)

    struct State: Sendable {
        var connected = false
        var connectedAt: MonotonicTime?
        var resumed = false
        var sessions = 0
    }

    let state = Mutex(State())
    /// Heartbeats written so far; each carries this count as its CPU idle ppm, so the
    /// coordinator's stored idle ratio says how many it has absorbed.
    let written = Atomic<UInt32>(0)

    init(id: String, address: String, coordinator: SocketAddress, tls: TLSContext, backoff: Backoff) throws {
        self.id = id
        self.address = address
        self.backoff = backoff
        client = RPCClient(
            target: coordinator, tls: tls, from: try SocketAddress(ip: address, port: 0), expectedRole: .coordinator,
            backoff: backoff)
    }

    func beat() { _ = tick.withLock { $0?.yield() } }

    private var idle: IdleRatios { IdleRatios(cpuPPM: written.load(ordering: .relaxed), memoryPPM: 500_000) }

    /// Register + session, again and again, until cancelled.
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                _ = try await client.unary(
                    CoordinatorService.register,
                    RegisterRequest(address: address, memberPort: 7401, mainVersion: "1.0.0", upgraderVersion: "1.0.0", idle: idle),
                    options: CallOptions(timeout: .seconds(30)))
                let connection = try await client.connection()
                let resumed = connection.isResumedTLS
                let (ticks, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
                tick.withLock { $0 = continuation }
                defer {
                    tick.withLock { $0 = nil }
                    continuation.finish()
                }
                try await connection.bidirectional(CoordinatorService.session) { writer, instructions in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            // The coordinator's first instruction (the assignment) means it attached the session.
                            for try await _ in instructions { self.attached(resumed: resumed) }
                        }
                        group.addTask {
                            for await _ in ticks {
                                let count = self.written.add(1, ordering: .relaxed).newValue
                                try await writer.write(AgentReport(heartbeat: Heartbeat(
                                    idle: IdleRatios(cpuPPM: count, memoryPPM: 500_000), mainVersion: "1.0.0", upgraderVersion: "1.0.0")))
                            }
                        }
                        _ = try await group.next()
                        group.cancelAll()
                    }
                }
            } catch {
                if Task.isCancelled { break }
                if debugSessions { emitLine("session \(id): \(error)", to: 2) }
            }
            let wasConnected = state.withLock { state -> Bool in
                defer { state.connected = false }
                return state.connected
            }
            failures = wasConnected ? 1 : failures + 1
            try? await Task.sleep(for: backoff.delay(afterFailures: failures))
        }
        state.withLock { $0.connected = false }
    }

    private func attached(resumed: Bool) {
        state.withLock { state in
            guard !state.connected else { return }
            state.connected = true
            state.connectedAt = MonotonicTime.now()
            state.resumed = resumed
            state.sessions += 1
        }
    }
}

/// Sends heartbeats to every session, spread evenly over the interval (one task, not 10,000
/// timers): the interval can change mid-run, for a measured burst.
final class HeartbeatDriver: Sendable {
    private let sessions: [IdleSession]
    let intervalMs = Atomic<Int>(5000)

    init(sessions: [IdleSession]) {
        self.sessions = sessions
    }

    func run() async {
        var cursor = 0.0
        var last = MonotonicTime.now()
        while !Task.isCancelled {
            // Sessions due since the last step, so that each gets one heartbeat per interval
            // however late the sleep wakes.
            let now = MonotonicTime.now()
            cursor += now.seconds(since: last) * 1000 * Double(sessions.count) / Double(max(1, intervalMs.load(ordering: .relaxed)))
            last = now
            while cursor >= 1 {
                cursor -= 1
                sessions[next()].beat()
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    private let position = Atomic<Int>(0)
    private func next() -> Int { position.wrappingAdd(1, ordering: .relaxed).oldValue % sessions.count }
}
