import CascadeAPI
import CascadeNet
import CascadeRPC

/// Who sent an upgrade order.
enum OrderOrigin: Sendable {
    case coordinator
    case leader(LeaderTarget)
}

/// The member's side of the first instruction: verify the release, download it chunk by chunk
/// (resumable, from the leader or the coordinator), verify the whole, install, report.
extension AgentRuntime {
    func startUpgrade(_ order: UpgradeOrder, origin: OrderOrigin) {
        enum Decision { case start, running, done, busy }
        let decision = core.withLock { state -> Decision in
            if state.stopped { return .done }
            // A repeated order (a rejoin, a failover) never starts a second task.
            if state.upgrade?.rolloutID == order.rolloutID { return .running }
            if let progress = state.progress, progress.rolloutID == order.rolloutID,
               progress.state == .healthy || progress.state == .rolledBack {
                // Never install the same rollout twice. A failure (a refused release, an aborted
                // download) may be retried by a new order.
                return .done
            }
            // Another rollout's download gives way; its install does not.
            if state.upgrade != nil && state.progress?.state == .installing { return .busy }
            state.upgrade?.task.cancel()
            if let hint = order.fetch { state.fetchHint = hint }
            state.upgrade = (order.rolloutID, Task { await self.performUpgrade(order, origin: origin) })
            return .start
        }
        switch decision {
        case .start: break
        case .running:
            if let hint = order.fetch { adoptFetchHint(hint) }
        case .done:
            // Say where we stand again, so whoever asked sees we are already done.
            progressChanged.notify()
        case .busy:
            refuse("rollout \(order.rolloutID) while installing another release")
        }
    }

    /// This agent now leads its cluster (an acting leader, after a failover): a member upgrade
    /// it was running stops before installing, since a leader upgrades last (on the second
    /// instruction, from the same staged chunks). Its progress stays as it was, unreported as a
    /// failure.
    func yieldOwnUpgradeToLeadership() {
        let task = core.withLock { state -> Task<Void, Never>? in
            guard let upgrade = state.upgrade, state.progress?.state != .installing else { return nil }
            state.upgrade = nil
            return upgrade.task
        }
        guard let task else { return }
        log("leading now: the member download stops; this agent upgrades last, on the second instruction")
        task.cancel()
    }

    func controlOwnUpgrade(_ control: RolloutControl) {
        guard control.action == .abort else { return }
        let task = core.withLock { state -> Task<Void, Never>? in
            guard state.upgrade?.rolloutID == control.rolloutID else { return nil }
            return state.upgrade?.task
        }
        task?.cancel()
    }

    private func performUpgrade(_ order: UpgradeOrder, origin: OrderOrigin) async {
        var progress = AgentProgress(rolloutID: order.rolloutID, state: .instructed, releaseVersion: order.releaseVersion)
        defer {
            core.withLock { state in
                if state.upgrade?.rolloutID == order.rolloutID { state.upgrade = nil }
            }
        }
        let manifest: Manifest
        do {
            manifest = try acceptableManifest(order.signedManifest, version: order.releaseVersion, rollback: order.rollback)
        } catch {
            refuse("release \(order.releaseVersion) of rollout \(order.rolloutID): \(error)")
            progress.state = .failed
            progress.error = "refused: \(error)"
            setProgress(progress)
            return
        }
        if manifest.version == core.value.mainVersion {
            progress.state = .healthy
            setProgress(progress)
            return
        }
        setProgress(progress)
        do {
            let artifact = try staging.artifact(for: order.signedManifest!, manifest: manifest)
            progress.state = .downloading
            progress.bytesTotal = manifest.size
            progress.bytesDone = artifact.verifiedBytes
            setProgress(progress)
            try await download(artifact, order: order, origin: origin)
            try Task.checkCancellation()
            try await installStaged(artifact, progress: progress)
        } catch {
            // A stopping agent leaves its progress as it was: the staged chunks resume next time.
            if isStopped { return }
            // So does one that became the leader, or whose upgrade gave way to another rollout's.
            if Task.isCancelled && core.value.upgrade?.rolloutID != order.rolloutID { return }
            progress.state = .failed
            progress.error = Task.isCancelled ? "aborted: \(error)" : "\(error)"
            log("rollout \(order.rolloutID): \(progress.error)")
            setProgress(progress)
        }
    }

    /// The manifest, if it verifies against a pinned key, names `version`, and is not a
    /// downgrade without an explicit rollback.
    func acceptableManifest(_ signed: SignedManifest?, version: String, rollback: Bool) throws -> Manifest {
        guard let signed else { throw RuntimeError(.refusedRelease, "the order carries no signed manifest") }
        let manifest = try verifier.verify(signed)
        guard manifest.version == version else {
            throw RuntimeError(.refusedRelease, "the order names version \(version) but its manifest is for \(manifest.version)")
        }
        if !rollback, let target = try? ReleaseVersion(manifest.version),
           let running = try? ReleaseVersion(core.value.mainVersion), target < running {
            throw RuntimeError(.refusedRelease, "\(manifest.version) is lower than the running \(running) and the order is not a rollback")
        }
        return manifest
    }

    /// Fills the staged artifact: from the leader by default; from the coordinator on a fetch
    /// hint, after a bad chunk (the fault reply says where), or after repeated leader failures.
    private func download(_ artifact: StagedArtifact, order: UpgradeOrder, origin: OrderOrigin) async throws {
        var failures = 0, leaderFailures = 0
        while !artifact.isComplete {
            try Task.checkCancellation()
            let source = chooseSource(rolloutID: order.rolloutID, origin: origin, leaderFailures: leaderFailures)
            let before = artifact.verifiedChunks
            // Where a (resumed) download starts: what an interruption cost is visible in the log.
            log("fetching \(artifact.manifest.version) from \(source.kind) from chunk \(before) of \(artifact.manifest.chunkCount) (\(artifact.verifiedBytes) of \(artifact.manifest.size) bytes staged)")
            do {
                let options: CallOptions
                if case .leader(_, let epoch) = source.kind { options = .epoch(epoch) } else { options = CallOptions() }
                try await ChunkDownloader.fetch(into: artifact, from: source, options: options) { bytes in
                    self.counters.withLock {
                        if source.isLeader { $0.bytesFromLeader += UInt64(bytes) } else { $0.bytesFromCoordinator += UInt64(bytes) }
                    }
                    self.setDownloadBytes(artifact.verifiedBytes, rolloutID: order.rolloutID)
                }
            } catch let fault as ChunkFault {
                try await reportBadChunk(fault, rolloutID: order.rolloutID, version: artifact.manifest.version)
                continue
            } catch {
                if Task.isCancelled { throw CancellationError() }
                failures += 1
                if source.isLeader { leaderFailures += 1 }
                log("fetching \(artifact.manifest.version) from \(source.kind) failed: \(error)")
            }
            if artifact.verifiedChunks > before { failures = 0 }
            if failures > 0 { await pause(configuration.retryBackoff.delay(afterFailures: failures)) }
        }
        setDownloadBytes(artifact.verifiedBytes, rolloutID: order.rolloutID)
    }

    private func chooseSource(rolloutID: UInt64, origin: OrderOrigin, leaderFailures: Int) -> ChunkSource {
        let state = core.value
        let coordinatorSource = ChunkSource(kind: .coordinator, client: coordinator)
        if let hint = state.fetchHint, hint.rolloutID == rolloutID, hint.source == .coordinator { return coordinatorSource }
        if case .coordinator = origin, state.fetchHint?.rolloutID != rolloutID { return coordinatorSource }
        guard leaderFailures < configuration.leaderFailuresBeforeCoordinator,
              let assignment = state.assignment, assignment.role == .member,
              let client = leaderClient(for: assignment.leaderAddress)
        else { return coordinatorSource }
        return ChunkSource(kind: .leader(id: assignment.leaderID, epoch: state.epoch), client: client)
    }

    /// A chunk failed its check: it was never stored; tell the coordinator, which says where to
    /// fetch from now (the coordinator itself, normally).
    private func reportBadChunk(_ fault: ChunkFault, rolloutID: UInt64, version: String) async throws {
        counters.withLock { $0.faultsReported += 1 }
        let sourceID: String
        if case .leader(let id, _) = fault.source { sourceID = id } else { sourceID = "" }
        log("discarded \(fault)")
        configuration.onEvent(.faultReported(chunk: fault.index, sourceID: sourceID))
        let report = FaultReport(
            rolloutID: rolloutID, sourceID: sourceID, releaseVersion: version, chunkIndex: fault.index,
            leaderEpoch: core.value.epoch, detail: "\(fault.reason)")
        var hint = FetchHint(rolloutID: rolloutID, source: .coordinator, reason: "a bad chunk from \(sourceID.isEmpty ? "the coordinator" : sourceID)")
        do {
            hint = try await coordinator.unary(CoordinatorService.reportFault, report, options: callOptions)
        } catch {
            log("reporting the bad chunk failed (\(error)); fetching from the coordinator")
        }
        if hint.source == .leader && !sourceID.isEmpty {
            // Never go back to the source that just served a bad chunk.
            hint.source = .coordinator
        }
        hint.rolloutID = rolloutID
        adoptFetchHint(hint)
        if sourceID.isEmpty { await pause(configuration.retryBackoff.delay(afterFailures: 1)) }
    }

    /// Checks the whole staged file, installs it and reports the outcome.
    func installStaged(_ artifact: StagedArtifact, progress start: AgentProgress) async throws {
        var progress = start
        do {
            try artifact.verifyWhole()
        } catch {
            artifact.reset()
            throw error
        }
        progress.state = .installing
        progress.bytesDone = artifact.manifest.size
        progress.bytesTotal = artifact.manifest.size
        setProgress(progress)
        counters.withLock { $0.installs += 1 }
        let outcome = try await installer.install(artifact: artifact.path, manifest: artifact.manifest)
        switch outcome {
        case .running(let version):
            core.withLock { $0.mainVersion = version }
            progress.state = .healthy
            progress.error = ""
        case .rolledBack(let reason):
            progress.state = .rolledBack
            progress.error = reason
        }
        log("rollout \(progress.rolloutID): \(progress.state) on \(core.value.mainVersion)")
        setProgress(progress)
    }
}
