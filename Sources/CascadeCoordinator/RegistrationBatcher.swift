import CascadeStore
import Synchronization

/// Registrations wait here while the store commits the previous batch, then go in together:
/// one transaction, one fsync, for every agent that registered meanwhile (group commit). A
/// lone registration is written at once, as before; a fleet reconnecting after a coordinator
/// restart no longer queues one fsync per agent. Each agent is answered only after its batch
/// has committed.
final class RegistrationBatcher: Sendable {
    typealias Waiter = CheckedContinuation<RegisteredAgent, any Error>

    private struct State {
        var pending: [(registration: AgentRegistration, waiter: Waiter)] = []
        var writing = false
    }

    private let state = Mutex(State())
    private let store: StoreExecutor
    private let metrics: CoordinatorMetrics
    /// At most this many per transaction, so a storm is answered in steady steps.
    static let maxBatch = 256

    init(store: StoreExecutor, metrics: CoordinatorMetrics) {
        self.store = store
        self.metrics = metrics
    }

    func register(_ registration: AgentRegistration) async throws -> RegisteredAgent {
        try await withCheckedThrowingContinuation { (waiter: Waiter) in
            let start = state.withLock { state -> Bool in
                state.pending.append((registration, waiter))
                if state.writing { return false }
                state.writing = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    /// Writes batches until nothing is waiting.
    private func drain() async {
        while true {
            let batch = state.withLock { state -> [(registration: AgentRegistration, waiter: Waiter)] in
                let batch = Array(state.pending.prefix(Self.maxBatch))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.writing = false }
                return batch
            }
            if batch.isEmpty { return }
            let registrations = batch.map(\.registration)
            metrics.registrationBatches.add(1, ordering: .relaxed)
            do {
                let results = try await store.run { store throws(StoreError) in try store.registerAgents(registrations) }
                for (entry, result) in zip(batch, results) {
                    entry.waiter.resume(with: result.mapError { $0 as any Error })
                }
            } catch {
                for entry in batch { entry.waiter.resume(throwing: error) }
            }
        }
    }
}
