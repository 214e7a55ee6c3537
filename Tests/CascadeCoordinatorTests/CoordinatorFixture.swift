import CascadeAPI
import CascadeCoordinator
import CascadeCrypto
import CascadeNet
import CascadeRPC
import CascadeStore
import CascadeTestSupport
import Foundation
import Synchronization

/// A coordinator on 127.0.0.1:0 with test certificates, a release-signing key it trusts, a
/// fast engine, and clients for operators and agents.
final class CoordinatorFixture: Sendable {
    let pki: TestPKI
    let data: TemporaryDirectory
    let signingKey: Ed25519PrivateKey
    let coordinator: Coordinator
    let address: SocketAddress
    let operatorClient: RPCClient

    init(livenessTimeout: Duration = .seconds(30), resend: Duration = .seconds(1),
         placement: CoordinatorConfiguration.Placement = .source, stall: Duration = .seconds(600),
         installingMargin: Duration = .seconds(120)) throws {
        pki = try TestPKI()
        data = try TemporaryDirectory(prefix: "cascade-coordinator")
        signingKey = try Ed25519PrivateKey.generate()
        let keyFile = data.file("release-key.pub.pem")
        try signingKey.publicKey.pemRepresentation.write(toFile: keyFile, atomically: true, encoding: .utf8)
        let configuration = CoordinatorConfiguration(
            dataDirectory: data.file("coordinator"), tls: try pki.configuration(uri: "cascade://coordinator/main"),
            trustedKeyFiles: [keyFile], listenAddress: try SocketAddress(ip: "127.0.0.1", port: 0),
            store: StoreConfiguration(livenessTimeout: livenessTimeout, agentTimeouts: AgentStateTimeouts(installingMargin: installingMargin)),
            reportInterval: .seconds(1), engineInterval: .milliseconds(50), resendInterval: resend, placement: placement)
        var configured = configuration
        configured.stallTimeout = stall
        coordinator = try Coordinator(configuration: configured)
        address = try coordinator.start()
        operatorClient = try Self.client(pki, address, uri: "cascade://operator/alice")
    }

    /// A client of the coordinator; `from` is the loopback address it connects from (an agent's
    /// address decides its cluster, and the coordinator takes it from the connection).
    static func client(_ pki: TestPKI, _ address: SocketAddress, uri: String, from: String? = nil) throws -> RPCClient {
        RPCClient(
            target: address, tls: try TLSContext(configuration: pki.configuration(uri: uri, ipAddresses: [from ?? "127.0.0.1"]), side: .client),
            from: try from.map { try SocketAddress(ip: $0, port: 0) },
            expectedRole: .coordinator, backoff: Backoff(initial: .milliseconds(10), maximum: .milliseconds(200)))
    }

    func agentClient(_ id: String) throws -> RPCClient {
        try Self.client(pki, address, uri: "cascade://agent/\(id)")
    }

    /// A release of `size` pseudo-random bytes, signed by the trusted key (or `key`).
    func release(_ version: String, size: Int = 300_000, chunkSize: UInt32 = 65_536, key: Ed25519PrivateKey? = nil)
        throws -> (signed: SignedManifest, manifest: Manifest, bytes: [UInt8]) {
        var bytes = [UInt8](repeating: 0, count: size)
        var state = UInt64(size) &+ UInt64(version.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) })
        for index in bytes.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[index] = UInt8(truncatingIfNeeded: state >> 33)
        }
        let path = data.file("artifact-\(version).tar")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let manifest = try ManifestBuilder(chunkSize: chunkSize).build(fileAt: path, name: "cascade-agent", version: version)
        let signed = try SignedManifest.sign(manifest, with: key ?? signingKey)
        return (signed, try Manifest(serializedBytes: signed.manifestBytes), bytes)
    }

    /// Pushes the manifest and the chunks at `indices` (all by default).
    @discardableResult
    func push(_ release: (signed: SignedManifest, manifest: Manifest, bytes: [UInt8]), indices: [Int]? = nil,
              tamper: Int? = nil, via client: RPCClient? = nil) async throws -> ReleaseInfo? {
        let connection = try await (client ?? operatorClient).connection()
        let response = try await connection.clientStreaming(OperatorService.pushRelease) { writer in
            try await writer.write(PushReleaseRequest(signedManifest: release.signed))
            for index in indices ?? Array(0..<release.manifest.chunkCount) {
                let start = Int(release.manifest.offset(ofChunk: index))
                var data = Array(release.bytes[start..<start + release.manifest.size(ofChunk: index)])
                if tamper == index { data[0] ^= 0xFF }
                try await writer.write(PushReleaseRequest(chunk: Chunk(index: UInt32(index), data: data)))
            }
        }
        return response.release
    }

    func shutdown() async {
        operatorClient.close()
        await coordinator.shutdown(drainTimeout: .seconds(1))
    }
}

/// A scripted agent: registers, holds a session, records the instructions it gets, and sends
/// whatever reports the test tells it to.
final class FakeAgent: Sendable {
    let id: String
    let address: String
    let client: RPCClient
    private let inbox = Inbox()
    private let outgoing: AsyncStream<AgentReport>.Continuation
    private let reports: AsyncStream<AgentReport>
    private let task = Mutex<Task<Void, any Error>?>(nil)
    /// The idle ratios it registered with (its healthy reports carry them again).
    private let idle = Mutex(IdleRatios(cpu: 0.5, memory: 0.5))

    convenience init(_ fixture: CoordinatorFixture, id: String, address: String) throws {
        try self.init(pki: fixture.pki, coordinator: fixture.address, id: id, address: address)
    }

    init(pki: TestPKI, coordinator: SocketAddress, id: String, address: String) throws {
        self.id = id
        self.address = address
        client = try CoordinatorFixture.client(pki, coordinator, uri: "cascade://agent/\(id)", from: address)
        (reports, outgoing) = AsyncStream<AgentReport>.makeStream()
    }

    func register(version: String = "1.0", cpu: Double, memory: Double = 0.5) async throws -> Assignment {
        idle.withLock { $0 = IdleRatios(cpu: cpu, memory: memory) }
        return try await client.unary(CoordinatorService.register, RegisterRequest(
            address: address, memberPort: 7401, mainVersion: version, upgraderVersion: version,
            idle: IdleRatios(cpu: cpu, memory: memory)))
    }

    /// Opens the session in the background.
    func connect() async throws {
        let connection = try await client.connection()
        let reports = self.reports
        let inbox = self.inbox
        let session = Task {
            try await connection.bidirectional(CoordinatorService.session) { writer, responses in
                let reader = Task {
                    for try await instruction in responses { inbox.items.withLock { $0.append(instruction) } }
                }
                for await report in reports { try await writer.write(report) }
                reader.cancel()
            }
        }
        task.withLock { $0 = session }
    }

    /// A progress report; `healthy` comes with a heartbeat running `version` on both programs,
    /// as a real agent's does once its upgrader followed.
    func report(_ state: AgentRolloutState, rollout: UInt64, version: String = "1.1", bytes: UInt64 = 0, error: String = "") {
        outgoing.yield(AgentReport(
            heartbeat: state == .healthy ? Heartbeat(idle: idle.withLock { $0 }, mainVersion: version, upgraderVersion: version) : nil,
            progress: AgentProgress(rolloutID: rollout, state: state, releaseVersion: version, bytesDone: bytes, error: error)))
    }

    /// Sends any report as it is (a scripted lie, say).
    func send(_ report: AgentReport) {
        outgoing.yield(report)
    }

    func heartbeat(cpu: Double, memory: Double = 0.5, version: String = "1.0") {
        outgoing.yield(AgentReport(heartbeat: Heartbeat(idle: IdleRatios(cpu: cpu, memory: memory), mainVersion: version, upgraderVersion: version)))
    }

    var instructions: [Instruction] { inbox.items.withLock { $0 } }

    /// Waits for an instruction that matches.
    func instruction(within limit: Duration = .seconds(10), _ what: String, where match: @escaping @Sendable (Instruction) -> Bool)
        async throws -> Instruction {
        try await waitUntil(within: limit, "\(id) to get \(what)") { inbox.items.withLock { $0.first(where: match) } }
    }

    /// Ends the session and the connection (as a crash would).
    func disconnect() {
        outgoing.finish()
        task.withLock { $0?.cancel() }
        client.close()
    }
}

/// What a fake agent received, in order.
final class Inbox: Sendable {
    let items = Mutex<[Instruction]>([])
}
