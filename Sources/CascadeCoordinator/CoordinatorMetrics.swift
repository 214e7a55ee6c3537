import CascadeAPI
public import CascadeMetrics
public import CascadeRPC
import Synchronization

/// The coordinator's counters: what benchmarks and logs read, and what `/metrics` serves
/// (`Coordinator.metricsExposition()`, where each is named and explained). Counters only go
/// up; the gauges (sessions, rollouts, agents) are read when scraped.
public final class CoordinatorMetrics: Sendable {
    let chunkBytesServed = Atomic<UInt64>(0)
    let reportsHandled = Atomic<UInt64>(0)
    let registrations = Atomic<UInt64>(0)
    let registrationBatches = Atomic<UInt64>(0)

    /// Handshakes, calls and call latency of the RPC server (counted by the RPC layer).
    public let rpc = RPCMetrics()
    /// Artifact bytes sent to agents by FetchChunks, by release.
    public let releaseBytesServed = LabeledCounter(labels: ["release"])
    /// Artifact bytes operators pushed, by release.
    public let releaseBytesReceived = LabeledCounter(labels: ["release"])
    /// Chunks that failed their check, by where they came from: `store` (found damaged where
    /// they rest, when the coordinator checks a release: before serving a chunk that failed, at
    /// rollout start, on demand), `push` (a pushed chunk against its manifest), and what agents report:
    /// `coordinator` (a chunk from the coordinator) or `leader` (a chunk from their leader).
    public let chunkVerificationFailures = LabeledCounter(labels: ["source"])
    /// Leaders named, replaced or moved (every change announced to a cluster).
    public let leaderChanges = Counter()
    /// Outermost store transactions, by outcome (`commit`, `rollback`).
    public let storeTransactions = LabeledHistogram(labels: ["outcome"])

    init() {
        // Every source from the start, so a rate over them is defined before the first failure.
        for source in ["store", "push", "coordinator", "leader"] { chunkVerificationFailures.add(0, source) }
    }

    /// Artifact bytes sent to agents by FetchChunks (the coordinator's egress for releases).
    public var chunkBytes: UInt64 { chunkBytesServed.load(ordering: .relaxed) }
    public var reports: UInt64 { reportsHandled.load(ordering: .relaxed) }
    public var registered: UInt64 { registrations.load(ordering: .relaxed) }
    /// Transactions the registrations took (fewer than `registered` when agents register at once).
    public var registrationCommits: UInt64 { registrationBatches.load(ordering: .relaxed) }

    /// Checks a pushed chunk against its manifest, counting a failure (source `push`).
    func verifyPushed(_ chunk: Chunk, against manifest: Manifest) throws {
        do {
            try manifest.verify(chunk)
        } catch {
            chunkVerificationFailures.add(1, "push")
            throw error
        }
    }
}
