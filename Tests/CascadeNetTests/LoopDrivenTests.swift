import CascadeNet
import CascadeTestSupport
import Synchronization
import Testing

/// Records what a readiness callback saw, for tests that wait on it with a deadline.
final class CallbackLog: Sendable {
    let calls = Mutex<[(ready: Bool, onLoop: Bool)]>([])
}

@Suite("Loop-driven TLS I/O")
struct LoopDrivenTests {
    /// A connected TLS pair: (client, server).
    func pair() async throws -> (TLSConnection, TLSConnection) {
        let pki = try TestPKI()
        let server = try OneShotServer(pki.configuration(uri: "cascade://coordinator/main"))
        let accepting = server.acceptOne()
        let client = try TLSContext(configuration: pki.configuration(uri: "cascade://agent/a1-01"), side: .client)
        let connection = try await client.connect(to: server.address)
        return (connection, try await accepting.value)
    }

    @Test("a readiness callback runs on the loop thread once bytes arrive, and readNow and writeNow move them")
    func readableCallback() async throws {
        let (client, server) = try await pair()
        let log = CallbackLog()
        server.whenReadable { ready in
            log.calls.withLock { $0.append((ready, server.loop.isLoopThread)) }
        }
        // Written from the loop thread without waiting, as a flush at the end of a turn does.
        let written = Mutex<ImmediateIO?>(nil)
        client.loop.beforeNextPoll {
            written.withLock { $0 = client.writeNow(Array("ping".utf8), from: 0) }
        }
        _ = try await waitUntil(within: .seconds(10), "the callback to run") {
            log.calls.withLock { $0.isEmpty ? nil : true }
        }
        guard case .wrote(4)? = written.withLock({ $0 }) else {
            Issue.record("writeNow did not take all 4 bytes: \(String(describing: written.withLock { $0 }))")
            return
        }
        let call = try #require(log.calls.withLock { $0.first })
        #expect(call.ready && call.onLoop)
        let read = await withCheckedContinuation { continuation in
            server.loop.beforeNextPoll { continuation.resume(returning: server.readNow(maxLength: 64)) }
        }
        guard case .read(let bytes, _) = read else {
            Issue.record("readNow returned \(read), not the bytes")
            return
        }
        #expect(bytes == Array("ping".utf8))
        await client.close(linger: .milliseconds(100))
        await server.close(linger: .milliseconds(100))
    }

    @Test("a callback waiting when its socket closes runs once on the loop; one asked for after the close hears it never will be ready")
    func closedWhileWaiting() async throws {
        let (client, server) = try await pair()
        let log = CallbackLog()
        server.whenReadable { ready in
            log.calls.withLock { $0.append((ready, server.loop.isLoopThread)) }
        }
        server.socket.close()
        _ = try await waitUntil(within: .seconds(10), "the callback to learn of the close") {
            log.calls.withLock { $0.isEmpty ? nil : true }
        }
        // The close may reach the loop as a hang-up event (ready) or as the removal (not ready);
        // either way exactly once, on the loop thread, and a read then fails.
        let calls = log.calls.withLock { $0 }
        #expect(calls.count == 1)
        #expect(calls.first?.onLoop == true)
        let read = await withCheckedContinuation { continuation in
            server.loop.beforeNextPoll { continuation.resume(returning: server.readNow(maxLength: 64)) }
        }
        guard case .failed = read else {
            Issue.record("a read after close returned \(read)")
            return
        }
        let after = CallbackLog()
        server.whenReadable { ready in
            after.calls.withLock { $0.append((ready, server.loop.isLoopThread)) }
        }
        _ = try await waitUntil(within: .seconds(10), "the late callback to run") {
            after.calls.withLock { $0.isEmpty ? nil : true }
        }
        #expect(after.calls.withLock { $0.map(\.ready) } == [false])
        #expect(after.calls.withLock { $0.first?.onLoop } == true)
        await client.close(linger: .milliseconds(100))
    }

    @Test("work queued from another thread with beforeNextPoll runs once, on the loop thread")
    func beforeNextPollFromElsewhere() async throws {
        let loop = EventLoopGroup.shared.next()
        let runs = Mutex<[Bool]>([])
        loop.beforeNextPoll { runs.withLock { $0.append(loop.isLoopThread) } }
        _ = try await waitUntil(within: .seconds(10), "the work to run") {
            runs.withLock { $0.isEmpty ? nil : true }
        }
        #expect(runs.withLock { $0 } == [true])
        #expect(!loop.isLoopThread)
    }
}
