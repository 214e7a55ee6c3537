@testable import CascadeCoordinator
import CascadeAPI
import CascadeNet
import CascadeTestSupport
import Foundation
import Synchronization
import Testing

@Suite("Coordinator file descriptors")
struct DescriptorLimitTests {
    @Test("the coordinator raises its open-file limit to the hard one, logs it, and logs accepts failing for lack of descriptors, then serves again")
    func outOfDescriptors() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        // A child with a low limit: soft 48 under a hard 96. Its own fds are its business, so
        // the test process's limit is never touched.
        let process = try CoordinatorProcess.launch(
            fixture, data: fixture.data.file("fd-data"), prefix: ["/bin/sh", "-c", "ulimit -Sn 48 && ulimit -Hn 96 && exec \"$0\" \"$@\""])
        defer { process.kill9() }
        let prefix = "cascade-coordinator: listening on "
        let line = try await process.line(startingWith: prefix, within: .seconds(30))
        let address = try SocketAddress(parsing: String(line.dropFirst(prefix.count).prefix { $0 != "," }))
        _ = try await waitUntil(within: .seconds(10), "the limit in the log") {
            process.standardError.contains(" info cascade-coordinator[\(process.pid)] coordinator: open-file limit 96 (raised from 48)\n") ? true : nil
        }

        // Connections that never start TLS each hold one of its descriptors until the handshake
        // timeout (10 s); well before that the coordinator runs out.
        var sockets: [Int32] = []
        defer { for fd in sockets { close(fd) } }
        let report = try await waitUntil(within: .seconds(10), "an accept failure in the log") { () -> String? in
            if let found = process.standardError.split(separator: "\n").first(where: { $0.contains("cannot accept connections: ") }) {
                return String(found)
            }
            for _ in 0..<10 where sockets.count < 200 { sockets.append(try connectPlain(address)) }
            return nil
        }
        #expect(report.hasSuffix(" error cascade-coordinator[\(process.pid)] tls: cannot accept connections: accept on \(address) failed: Too many open files "
            + "(this process is out of file descriptors; its open-file limit is 96); retrying"), "\(report)")

        // Descriptors back: the accept loop was retrying, not stopped.
        for fd in sockets { close(fd) }
        sockets = []
        let client = try CoordinatorFixture.client(fixture.pki, address, uri: "cascade://operator/alice")
        defer { client.close() }
        _ = try await waitUntilConnected(client)
    }

    @Test("accept failures are logged at most once per interval, with how many were not")
    func rateLimited() {
        let clock = Mutex(ContinuousClock.now)
        let lines = Mutex<[String]>([])
        let log = AcceptFailureLog(interval: .seconds(10), now: { clock.withLock { $0 } }, write: { line in lines.withLock { $0.append(line) } })
        let error = NetError(.system, "accept on 127.0.0.1:7400 failed: Too many open files in system", errno: ENFILE)
        log.record(error)
        for step in [1, 4, 4] {
            clock.withLock { $0 += .seconds(step) - .milliseconds(1) }
            log.record(error)
        }
        #expect(lines.withLock { $0.count } == 1)
        clock.withLock { $0 += .seconds(10) }
        log.record(error)
        #expect(lines.withLock { $0 } == [
            "cannot accept connections: accept on 127.0.0.1:7400 failed: Too many open files in system (the system is out of file descriptors: fs.file-max); retrying",
            "cannot accept connections: accept on 127.0.0.1:7400 failed: Too many open files in system (the system is out of file descriptors: fs.file-max); 3 more since the last report; retrying",
        ])
    }
}

/// A plain TCP connection (no TLS) to `address`: the kernel completes it into the backlog.
private func connectPlain(_ address: SocketAddress) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed: \(String(cString: strerror(errno)))") }
    var target = sockaddr_in()
    target.sin_family = sa_family_t(AF_INET)
    target.sin_port = address.port.bigEndian
    target.sin_addr.s_addr = address.ipBytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
    let result = withUnsafePointer(to: &target) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard result == 0 else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw TestFailure("connect to \(address) failed: \(reason)")
    }
    return fd
}
