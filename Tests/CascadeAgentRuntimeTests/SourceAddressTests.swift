import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeTestSupport
import Testing
@testable import CascadeAgentRuntime

/// An agent's own connections start from its bind address, so the coordinator and leaders see
/// the address it registered (on loopback: the subnet it emulates), not the kernel's default.
@Suite("Agent source address")
struct SourceAddressTests {
    func configuration(bind: String, coordinator: SocketAddress, pki: TestPKI, state: TemporaryDirectory) throws -> AgentRuntimeConfiguration {
        AgentRuntimeConfiguration(
            coordinatorAddress: coordinator, bindAddress: bind,
            tls: try pki.configuration(uri: "cascade://agent/s1", name: "s1"),
            releaseKeys: [try Ed25519PrivateKey.generate().publicKey], stateDirectory: state.file("s1"),
            mainVersion: "1.0.0", upgraderVersion: "1.0.0",
            retryBackoff: Backoff(initial: .milliseconds(20), maximum: .milliseconds(200)))
    }

    @Test("the connection to the coordinator comes from the agent's bind address")
    func boundToAgentAddress() async throws {
        let pki = try TestPKI()
        let state = try TemporaryDirectory(prefix: "cascade-source")
        // A plain TCP listener stands in for the coordinator: the accept is all this test needs.
        let listener = try TCPListener(bindingTo: SocketAddress(ip: "127.0.0.1", port: 0))
        defer { listener.close() }
        let runtime = try AgentRuntime(
            configuration: configuration(bind: "127.0.54.9", coordinator: listener.localAddress, pki: pki, state: state),
            installer: MemoryInstaller(agent: "s1", log: InstallLog()))
        let task = Task { try await runtime.run() }
        defer { task.cancel() }
        let accepted = try await listener.accept()
        #expect(accepted.remoteAddress?.ipString == "127.0.54.9")
        accepted.close()
        await runtime.shutdown()
    }

    @Test("no source address for a wildcard bind or a target of the other family")
    func unbound() throws {
        let pki = try TestPKI()
        let state = try TemporaryDirectory(prefix: "cascade-source")
        let v4 = try SocketAddress(ip: "127.0.0.1", port: 7000)
        let v6 = try SocketAddress(ip: "::1", port: 7000)
        #expect(AgentRuntime.sourceAddress(try configuration(bind: "127.0.54.9", coordinator: v4, pki: pki, state: state), toward: v4)
            == (try SocketAddress(ip: "127.0.54.9", port: 0)))
        #expect(AgentRuntime.sourceAddress(try configuration(bind: "0.0.0.0", coordinator: v4, pki: pki, state: state), toward: v4) == nil)
        #expect(AgentRuntime.sourceAddress(try configuration(bind: "127.0.54.9", coordinator: v4, pki: pki, state: state), toward: v6) == nil)
    }
}
