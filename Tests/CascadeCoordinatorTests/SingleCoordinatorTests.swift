import CascadeCoordinator
import CascadeNet
import CascadeTestSupport
import Foundation
import Testing

/// One coordinator per data directory, and only with a coordinator's certificate.
@Suite("One coordinator per data directory")
struct SingleCoordinatorTests {
    @Test("a second coordinator in the same process is refused, naming the holder's pid; a free directory still opens")
    func inProcess() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let configuration = fixture.coordinator.configuration
        let error = try #require(throws: CoordinatorError.self) { try Coordinator(configuration: configuration) }
        #expect(error.description == "another coordinator (pid \(getpid())) is using the data directory \(configuration.dataDirectory); stop it first or choose another --data")

        var other = configuration
        other.dataDirectory = fixture.data.file("other")
        let second = try Coordinator(configuration: other)
        #expect(try String(contentsOfFile: other.dataDirectory + "/lock", encoding: .utf8) == "\(getpid())\n")
        _ = second
    }

    @Test("a second coordinator process on the same data directory exits 1 naming the first one's pid; after kill -9 of the first a new one starts")
    func process() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let data = fixture.data.file("process-data")
        let first = try await CoordinatorProcess.start(fixture, data: data)
        defer { first.process.kill9() }

        let second = try CoordinatorProcess.launch(fixture, data: data, mergeStandardError: true)
        defer { second.kill9() }
        #expect(try await second.exitStatus(within: .seconds(30)) == 1)
        #expect(second.lines == [
            "cascade-coordinator: cannot start: another coordinator (pid \(first.process.pid)) is using the data directory \(data); stop it first or choose another --data",
        ])
        // The refused one changed nothing: the first still serves and its pid is still recorded.
        #expect(try String(contentsOfFile: data + "/lock", encoding: .utf8) == "\(first.process.pid)\n")
        let client = try CoordinatorFixture.client(fixture.pki, first.address, uri: "cascade://operator/alice")
        defer { client.close() }
        _ = try await waitUntilConnected(client)

        // kill -9 leaves the lock file behind but not the lock: the kernel dropped it with the process.
        first.process.kill9()
        _ = try await first.process.exitStatus()
        let third = try await CoordinatorProcess.start(fixture, data: data)
        defer { third.process.kill9() }
        #expect(try String(contentsOfFile: data + "/lock", encoding: .utf8) == "\(third.process.pid)\n")
    }

    @Test("a coordinator given an agent's certificate refuses to start, in one sentence")
    func agentCertificate() async throws {
        let fixture = try CoordinatorFixture()
        defer { Task { await fixture.shutdown() } }
        let process = try CoordinatorProcess.launch(
            fixture, data: fixture.data.file("agent-cert-data"), uri: "cascade://agent/a1-01", mergeStandardError: true)
        defer { process.kill9() }
        #expect(try await process.exitStatus(within: .seconds(30)) == 1)
        let certificate = fixture.pki.directory.file("process-agent-a1-01.pem")
        #expect(process.lines == [
            "cascade-coordinator: cannot start: the certificate \(certificate) is for agent a1-01 (cascade://agent/a1-01), not a coordinator; "
                + "--cert needs one with the SAN URI cascade://coordinator/<id>",
        ])
    }
}
