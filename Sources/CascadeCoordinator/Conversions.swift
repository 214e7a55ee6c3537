import CascadeAPI
import CascadeCrypto
import CascadeStore

// Store records ↔ API messages. Clusters are named on the wire by their prefix string
// ("127.0.1.0/24"), which is stable and readable; the store's row id stays internal.

extension CascadeAPI.AgentRole {
    init(_ role: CascadeStore.AgentRole) {
        self = role == .leader ? .leader : .member
    }
}

extension CascadeAPI.IdleWeights {
    /// The coordinator's weights as the integer parts leaders rank with (services.md §2.3), so
    /// a leader orders members as the coordinator orders agents: the smallest integers in the
    /// same proportion when both weights have at most six decimal places (0.6 and 0.4 → 3 and
    /// 2), otherwise the larger scaled to 1,000,000 and the other rounded in proportion.
    init(_ weights: CascadeStore.IdleWeights) {
        // The store guarantees finite, non-negative weights, not both zero.
        var scale = 1.0
        for _ in 0...6 {
            // 0.57 × 100 is 56.99999999999999 in binary floating point: near enough is integral.
            // A weight that is not zero must not round to zero (it would drop out, or turn both
            // to 0, which means the default).
            let cpu = (weights.cpu * scale).rounded(), memory = (weights.memory * scale).rounded()
            func integral(_ value: Double, _ rounded: Double) -> Bool {
                abs(value - rounded) <= 1e-9 * max(1, value) && (rounded > 0 || value == 0)
            }
            if integral(weights.cpu * scale, cpu), integral(weights.memory * scale, memory),
               max(cpu, memory) <= Double(UInt32.max) {
                let divisor = Self.gcd(UInt64(cpu), UInt64(memory))
                self.init(cpu: UInt32(UInt64(cpu) / divisor), memory: UInt32(UInt64(memory) / divisor))
                return
            }
            scale *= 10
        }
        let toMillion = 1_000_000 / max(weights.cpu, weights.memory)
        // The smaller weight keeps at least 1 if it is not zero.
        func part(_ weight: Double) -> UInt32 { weight == 0 ? 0 : max(1, UInt32((weight * toMillion).rounded())) }
        self.init(cpu: part(weights.cpu), memory: part(weights.memory))
    }

    private static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        b == 0 ? max(a, 1) : gcd(b, a % b)
    }
}

extension CascadeAPI.AgentRolloutState {
    init(_ state: RolloutAgentState) {
        switch state {
        case .pending: self = .pending
        case .instructed: self = .instructed
        case .downloading: self = .downloading
        case .installing: self = .installing
        case .healthy: self = .healthy
        case .failed: self = .failed
        case .rolledBack: self = .rolledBack
        }
    }

    /// nil for values a report may not carry (unspecified, unknown).
    var storeState: RolloutAgentState? {
        switch self {
        case .pending: .pending
        case .instructed: .instructed
        case .downloading: .downloading
        case .installing: .installing
        case .healthy: .healthy
        case .failed: .failed
        case .rolledBack: .rolledBack
        case .unspecified, .unknown: nil
        }
    }
}

extension CascadeAPI.RolloutState {
    init(_ state: CascadeStore.RolloutState) {
        switch state {
        case .requested: self = .requested
        case .running: self = .running
        case .paused: self = .paused
        case .succeeded: self = .succeeded
        case .partial: self = .partial
        case .failed: self = .failed
        case .aborted: self = .aborted
        }
    }
}

extension ClusterPhase {
    init(_ state: RolloutClusterState, leaderTurn: Bool) {
        switch state {
        case .pending: self = .pending
        case .running: self = leaderTurn ? .leader : .members
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .aborted: self = .aborted
        }
    }
}

extension CascadeAPI.RolloutPolicy {
    init(_ policy: CascadeStore.RolloutPolicy) {
        self.init(
            maxUnavailable: UInt32(policy.maxUnavailable), maxParallelClusters: UInt32(policy.maxParallelClusters),
            canaryClusters: UInt32(policy.canaryClusters), failureBudgetPercent: UInt32(policy.failureBudgetPercent),
            healthTimeoutSeconds: UInt32(policy.healthTimeoutSeconds), rollback: policy.rollback)
    }
}

extension Timestamp {
    var unixMilliseconds: UInt64 { UInt64(max(0, milliseconds)) }
}

extension AgentRecord {
    var idle: IdleRatios { IdleRatios(cpu: cpuIdle, memory: memoryIdle) }
    var memberAddress: String { SocketText.hostPort(address, port) }

    func info(connected: Bool) -> AgentInfo {
        AgentInfo(
            agentID: id, address: address, memberPort: UInt32(clamping: port), clusterID: clusterPrefix,
            role: CascadeAPI.AgentRole(role), mainVersion: mainVersion, upgraderVersion: upgraderVersion, idle: idle,
            lastSeenMs: lastSeen.unixMilliseconds, connected: connected, hostname: hostname,
            registeredAtMs: registeredAt.unixMilliseconds)
    }
}

enum SocketText {
    /// "ip:port", with brackets around IPv6 addresses.
    static func hostPort(_ address: String, _ port: Int) -> String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}

extension ReleaseRecord {
    func info(chunksPresent: Int) -> ReleaseInfo {
        let manifestDigest = SHA256.hash(release.manifest)
        return ReleaseInfo(
            name: release.name, version: release.version, size: UInt64(release.size), chunkSize: UInt32(release.chunkSize),
            chunkCount: UInt32(release.chunkCount), sha256: release.blobDigest, keyID: release.keyID,
            createdAt: UInt64(max(0, release.createdAt.milliseconds / 1000)), pushedAtMs: storedAt.unixMilliseconds,
            pushedBy: pushedBy, chunksPresent: UInt32(chunksPresent), complete: isComplete, manifestSHA256: manifestDigest,
            damage: damage)
    }

    var signedManifest: SignedManifest {
        SignedManifest(manifestBytes: release.manifest, signature: release.signature, keyID: release.keyID)
    }
}

extension RolloutRecord {
    /// What this rollout installs, as every agent in it is told on its own session: the
    /// check a member applies to its leader's orders (services.md §3.2).
    func expectation(_ release: ReleaseRecord) -> RolloutExpectation {
        RolloutExpectation(
            rolloutID: UInt64(id), releaseName: release.release.name, releaseVersion: releaseVersion,
            manifestSHA256: SHA256.hash(release.release.manifest),
            downgrade: policy.downgrade.isEmpty ? nil : try? SignedDowngrade(serializedBytes: policy.downgrade))
    }
}
