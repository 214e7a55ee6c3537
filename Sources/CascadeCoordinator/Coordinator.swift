import CascadeAPI
public import CascadeNet
import CascadeCrypto
import CascadeRPC
import CascadeStore
import Foundation
import Synchronization

/// A coordinator failed to start: one sentence saying what and why.
public struct CoordinatorError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The server of record: agents register and report here, operators push releases and run
/// rollouts here, and the rollout engine drives every active rollout from the database.
public final class Coordinator: Sendable {
    public let configuration: CoordinatorConfiguration
    let store: StoreExecutor
    let blobs: BlobStore
    let verifier: ReleaseVerifier
    let hub = SessionHub()
    let engine: RolloutEngine
    public let metrics = CoordinatorMetrics()
    let manifests = ManifestCache()
    let batcher = HeartbeatBatcher()
    let registrations: RegistrationBatcher
    let faults = FaultLedger()
    let rolloutBytes = RolloutBytes()
    /// The main version each agent last reported, to notice when it changes.
    let versions = VersionWatch()
    /// Releases whose stored blob is being checked after a chunk failed at serve time.
    let verifying = Mutex<Set<String>>([])
    /// Held for this coordinator's life: one coordinator per data directory.
    let directoryLock: DataDirectoryLock
    let acceptFailures = AcceptFailureLog()
    /// Refused handshakes and PERMISSION_DENIED calls: rate-limited warnings and audit events.
    let security: SecurityLog
    /// The HTTP views (`/metrics`, the status page), when configured.
    let views = ViewServers()
    let running = Mutex<(server: RPCServer?, engine: Task<Void, Never>?, flusher: Task<Void, Never>?)>((nil, nil, nil))

    /// Locks the data directory, opens (and migrates) the database and loads the trusted
    /// release keys. Refuses a data directory another coordinator (any process) holds.
    public init(configuration: CoordinatorConfiguration) throws {
        self.configuration = configuration
        do {
            try FileManager.default.createDirectory(
                atPath: configuration.dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CoordinatorError("cannot create the data directory \(configuration.dataDirectory): \(error.localizedDescription)")
        }
        do {
            directoryLock = try DataDirectoryLock.acquire(dataDirectory: configuration.dataDirectory)
        } catch {
            throw CoordinatorError(error.message)
        }
        do {
            store = try StoreExecutor(dataDirectory: configuration.dataDirectory, configuration: configuration.store)
            blobs = try BlobStore(dataDirectory: configuration.dataDirectory)
        } catch {
            throw CoordinatorError("cannot open the store in \(configuration.dataDirectory): \(error.message)")
        }
        var keys: [Ed25519PublicKey] = []
        for path in configuration.trustedKeyFiles {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw CoordinatorError("cannot read the trusted key file \(path)")
            }
            do {
                keys.append(try Ed25519PublicKey(pemRepresentation: text))
            } catch {
                throw CoordinatorError("the trusted key file \(path) does not hold an Ed25519 public key: \(error)")
            }
        }
        verifier = ReleaseVerifier(trustedKeys: keys)
        security = SecurityLog(store: store)
        engine = RolloutEngine()
        registrations = RegistrationBatcher(store: store, metrics: metrics)
        store.observeTransactions { [metrics] seconds, committed in
            metrics.storeTransactions.observe(seconds, committed ? "commit" : "rollback")
        }
    }

    /// Binds the listener, starts serving and starts the rollout engine. Returns the address
    /// actually bound (port 0 picks one).
    @discardableResult
    public func start() throws -> SocketAddress {
        var tlsConfiguration = configuration.tls
        tlsConfiguration.sessionTicketKeys = try ticketKeys()
        let tls = try TLSContext(configuration: tlsConfiguration, side: .server)
        // Agents and operators refuse any other role, so another role's certificate would
        // only show up as every client failing; refuse it here in one sentence instead.
        let identity = try tls.localIdentity
        guard identity.role == .coordinator else {
            throw CoordinatorError(
                "the certificate \(configuration.tls.certificateChainFile) is for \(identity) (\(identity.uri)), not a coordinator; "
                    + "--cert needs one with the SAN URI cascade://coordinator/<id>")
        }
        let router = RPCRouter()
        registerAgentMethods(on: router)
        registerReleaseMethods(on: router)
        registerRolloutMethods(on: router)
        registerFleetMethods(on: router)
        metrics.rpc.recognize(router.methodNames)
        router.onPermissionDenied { [security] in security.denied($0) }
        let bound = try bindViews()
        let server = try RPCServer(
            bindingTo: configuration.listenAddress, tls: tls, router: router,
            onAcceptError: { [acceptFailures] in acceptFailures.record($0) }, observer: metrics.rpc,
            onHandshakeFailure: { [security] in security.handshakeFailed($0) })
        server.start()
        views.start(bound)
        let engineTask = Task { await self.runEngine() }
        let flusher = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))  // the batch period, a timer
                await self.flushBatches()
            }
        }
        running.withLock { $0 = (server, engineTask, flusher) }
        return server.localAddress
    }

    /// Stops the engine, ends agent sessions and drains calls in flight (up to `drainTimeout`).
    public func shutdown(drainTimeout: Duration = .seconds(5)) async {
        let (server, engineTask, flusher) = running.withLock { state in
            defer { state = (nil, nil, nil) }
            return state
        }
        engineTask?.cancel()
        flusher?.cancel()
        hub.closeAll()
        await views.stop()
        await server?.shutdown(drainTimeout: drainTimeout)
        await engineTask?.value
        await flusher?.value
        await flushBatches()
    }

    /// The session ticket keys in the data directory (made once, 0600): agents reconnecting
    /// after a restart resume their TLS sessions instead of all doing full handshakes at once.
    private func ticketKeys() throws -> [UInt8] {
        let path = "\(configuration.dataDirectory)/tls-ticket-keys"
        if !FileManager.default.fileExists(atPath: path) {
            try SecretFile.create(at: path, contents: Hex.encode(SecureRandom.bytes(TLSContext.ticketKeyLength)) + "\n")
        }
        let text = try SecretFile.read(path).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let keys = Hex.decode(text), keys.count == TLSContext.ticketKeyLength else {
            throw CoordinatorError("\(path) does not hold \(TLSContext.ticketKeyLength) bytes of hex; delete it to make new keys")
        }
        return keys
    }

    /// The engine's loop: one step per interval (a timer, not a wait for some condition).
    private func runEngine() async {
        while !Task.isCancelled {
            await step()
            try? await Task.sleep(for: configuration.engineInterval)
        }
    }
}

/// The byte counters of each cluster in each rollout (services.md §3.4), in memory: a
/// restarted coordinator counts its own bytes from zero and learns each leader's count from
/// its next report.
final class RolloutBytes: Sendable {
    private struct Key: Hashable {
        let rollout: Int64
        let cluster: String
    }

    private struct Counts {
        var fromCoordinator: [Key: UInt64] = [:]
        /// The latest cumulative count each leader of the cluster reported for the rollout.
        var served: [Key: [String: UInt64]] = [:]
    }

    private let counts = Mutex(Counts())

    /// Artifact bytes the coordinator wrote to a FetchChunks call of an agent of `cluster` in
    /// `rollout`.
    func addFromCoordinator(_ bytes: UInt64, rollout: Int64, cluster: String) {
        counts.withLock { $0.fromCoordinator[Key(rollout: rollout, cluster: cluster), default: 0] += bytes }
    }

    /// A leader's own cumulative count for the rollout (ClusterReport.bytes_served). Each
    /// leader's latest report replaces its earlier ones; after a failover the cluster's count
    /// is the sum over its leaders.
    func leaderServed(_ bytes: UInt64, rollout: Int64, cluster: String, leader: String) {
        counts.withLock { $0.served[Key(rollout: rollout, cluster: cluster), default: [:]][leader] = bytes }
    }

    /// Cluster prefix → (bytes from the coordinator, bytes its leaders served) in `rollout`.
    func clusters(rollout: Int64) -> [String: (fromCoordinator: UInt64, served: UInt64)] {
        counts.withLock { counts in
            var result: [String: (fromCoordinator: UInt64, served: UInt64)] = [:]
            for (key, bytes) in counts.fromCoordinator where key.rollout == rollout {
                result[key.cluster, default: (0, 0)].fromCoordinator = bytes
            }
            for (key, leaders) in counts.served where key.rollout == rollout {
                result[key.cluster, default: (0, 0)].served = leaders.values.reduce(0, +)
            }
            return result
        }
    }
}

/// Decoded manifests of stored releases, by version (they never change once stored).
final class ManifestCache: Sendable {
    private let entries = Mutex<[String: Manifest]>([:])

    func manifest(for record: ReleaseRecord) throws(RPCError) -> Manifest {
        if let cached = entries.withLock({ $0[record.version] }) { return cached }
        let manifest: Manifest
        do {
            manifest = try Manifest(serializedBytes: record.release.manifest)
        } catch {
            throw RPCError(.dataLoss, "the stored manifest of \(record.version) does not decode: \(error.message)")
        }
        entries.withLock { $0[record.version] = manifest }
        return manifest
    }

    func forget(_ version: String) {
        _ = entries.withLock { $0.removeValue(forKey: version) }
    }
}

/// The main version each agent last reported: the record is reconciled only when one changes.
final class VersionWatch: Sendable {
    private let seen = Mutex<[String: String]>([:])

    /// Records `version` for `agentID`; true when it differs from the one seen before (or is
    /// the first one seen since this coordinator started).
    func changed(_ agentID: String, to version: String) -> Bool {
        seen.withLock { seen in
            defer { seen[agentID] = version }
            return seen[agentID] != version
        }
    }
}
