import CascadeAPI
import CascadeCrypto
import CascadeNet
import CascadeRPC
import Foundation

/// A development CA made in-process, and one certificate per identity written as PEM files:
/// issuing 10,000 leaves with openssl(1) takes minutes, in-process it takes seconds.
final class FleetPKI: Sendable {
    let directory: String
    let authority: CertificateAuthority
    let caFile: String

    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let now = Int64(Date().timeIntervalSince1970)
        authority = try CertificateAuthority(commonName: "cascade fleet-sim CA", now: now, lifetime: 2 * 86_400)
        caFile = "\(directory)/ca.pem"
        try authority.certificatePEM.write(toFile: caFile, atomically: false, encoding: .utf8)
    }

    /// Issues `cascade://<role>/<id>` and returns a TLS configuration using it.
    func issue(role: String, id: String, ip: String = "127.0.0.1") throws -> TLSConfiguration {
        let now = Int64(Date().timeIntervalSince1970)
        let issued = try authority.issue(CertificateRequest(
            commonName: "\(role)-\(id)", uris: ["cascade://\(role)/\(id)"], ipAddresses: [ip],
            notBefore: now - 3600, notAfter: now + 86_400))
        let base = "\(directory)/\(role)-\(id)"
        try issued.certificatePEM.write(toFile: base + ".pem", atomically: false, encoding: .utf8)
        try issued.privateKeyPEM.write(toFile: base + ".key", atomically: false, encoding: .utf8)
        return TLSConfiguration(trustRootsFile: caFile, certificateChainFile: base + ".pem", privateKeyFile: base + ".key")
    }

    /// Agent certificates for `ids` (with their IPs), issued on every core at once.
    func issueAgents(_ ids: [(id: String, ip: String)]) async throws -> [String: TLSConfiguration] {
        let lanes = max(1, ProcessInfo.processInfo.activeProcessorCount)
        return try await withThrowingTaskGroup(of: [(String, TLSConfiguration)].self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    try stride(from: lane, to: ids.count, by: lanes).map { index in
                        (ids[index].id, try self.issue(role: "agent", id: ids[index].id, ip: ids[index].ip))
                    }
                }
            }
            var all: [String: TLSConfiguration] = [:]
            for try await part in group { for (id, tls) in part { all[id] = tls } }
            return all
        }
    }
}

/// A signed release of pseudo-random bytes, with its artifact file and trusted key file.
struct FleetRelease: Sendable {
    let version: String
    let signed: SignedManifest
    let manifest: Manifest
    let bytes: [UInt8]
    let key: Ed25519PrivateKey
    let publicKeyFile: String

    init(version: String, size: Int, directory: String) throws {
        var bytes = [UInt8](repeating: 0, count: size)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for index in bytes.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            bytes[index] = UInt8(truncatingIfNeeded: state >> 33)
        }
        let path = "\(directory)/artifact-\(version).bin"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        key = try Ed25519PrivateKey.generate()
        publicKeyFile = "\(directory)/release-key.pub.pem"
        try key.publicKey.pemRepresentation.write(toFile: publicKeyFile, atomically: false, encoding: .utf8)
        let built = try ManifestBuilder().build(fileAt: path, name: "cascade-agent", version: version)
        signed = try SignedManifest.sign(built, with: key)
        manifest = try Manifest(serializedBytes: signed.manifestBytes)
        self.version = version
        self.bytes = bytes
    }
}

/// The operator's side, over RPC as `cascadectl` would: push, start, watch.
struct FleetOperator: Sendable {
    let client: RPCClient

    init(pki: FleetPKI, coordinator: SocketAddress) throws {
        let tls = try TLSContext(configuration: pki.issue(role: "operator", id: "bench"), side: .client)
        client = RPCClient(target: coordinator, tls: tls, expectedRole: .coordinator)
    }

    func push(_ release: FleetRelease) async throws {
        let connection = try await client.connection()
        let response = try await connection.clientStreaming(OperatorService.pushRelease) { writer in
            try await writer.write(PushReleaseRequest(signedManifest: release.signed))
            for index in 0..<release.manifest.chunkCount {
                let start = Int(release.manifest.offset(ofChunk: index))
                let data = Array(release.bytes[start..<start + release.manifest.size(ofChunk: index)])
                try await writer.write(PushReleaseRequest(chunk: Chunk(index: UInt32(index), data: data)))
            }
        }
        guard response.release?.version == release.version else { throw BenchError("the push of \(release.version) was not accepted") }
    }

    func startRollout(_ version: String, policy: RolloutPolicy) async throws -> UInt64 {
        try await client.unary(OperatorService.startRollout, StartRolloutRequest(releaseVersion: version, policy: policy)).rolloutID
    }

    /// Polls until the rollout is terminal or `limit` passes; returns the last status.
    func waitForRollout(_ id: UInt64, within limit: Duration, onPoll: (RolloutStatus) -> Void = { _ in }) async throws -> RolloutStatus {
        let deadline = ContinuousClock.now + limit
        while true {
            let status = try await client.unary(OperatorService.getRollout, RolloutQuery(rolloutID: id))
            onPoll(status)
            if status.state.isTerminal { return status }
            guard ContinuousClock.now < deadline else { return status }
            try await Task.sleep(for: .milliseconds(50))  // poll interval, bounded by the deadline
        }
    }

    func agents() async throws -> [AgentInfo] {
        try await client.unary(OperatorService.listAgents, ListAgentsRequest(limit: 10_000)).agents
    }
}

/// One client fetching the whole release from the coordinator with FetchChunks, checking each
/// chunk against the manifest as an agent does: the single-stream baseline. The connection is
/// made first, so the time is the transfer's alone. Returns seconds.
func singleStreamFetch(pki: FleetPKI, coordinator: SocketAddress, release: FleetRelease, id: String) async throws -> Double {
    let tls = try TLSContext(configuration: pki.issue(role: "agent", id: id), side: .client)
    let client = RPCClient(target: coordinator, tls: tls, expectedRole: .coordinator)
    defer { client.close() }
    let connection = try await client.connection()
    let manifest = release.manifest
    let start = MonotonicTime.now()
    var received = 0
    try await connection.serverStreaming(
        CoordinatorService.fetchChunks, FetchChunksRequest(version: release.version, artifactSHA256: manifest.sha256)
    ) { chunks in
        for try await chunk in chunks {
            try manifest.verifyChunk(index: Int(chunk.index), bytes: chunk.data)
            received += chunk.data.count
        }
    }
    let seconds = MonotonicTime.now().seconds(since: start)
    guard received == release.bytes.count else { throw BenchError("the single-stream fetch got \(received) of \(release.bytes.count) bytes") }
    return seconds
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    return values.sorted()[(values.count - 1) / 2]
}

func makeWorkDirectory(_ requested: String?, prefix: String) throws -> String {
    let base = requested ?? NSTemporaryDirectory()
    let path = "\(base)/\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// `--name 250ms|5s|2m` as a Duration.
func parseDuration(_ text: String) throws -> Duration {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        if let value = Double(text.dropLast(suffix.count)), value >= 0 { return .milliseconds(Int64(value * scale * 1000)) }
    }
    throw BenchError("\"\(text)\" is not a duration such as 250ms, 5s or 2m")
}
