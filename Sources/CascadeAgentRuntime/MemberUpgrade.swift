#if canImport(Glibc)
import Glibc
#endif
import CascadeAPI
import CascadeCrypto
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
        enum Decision { case start, running, done, busy, waiting }
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
            // The coordinator decides what a rollout installs: until it has said so on this
            // agent's own session, a leader's order waits (the two race at a cluster's start).
            guard state.expectations[order.rolloutID] != nil else {
                state.parkedOrder = (order, origin)
                return .waiting
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
        case .waiting:
            log("rollout \(order.rolloutID): the order waits until the coordinator says what the rollout installs")
        }
    }

    /// The coordinator's word on what a rollout installs (on this agent's own session). An
    /// order that arrived first, and waited for it, is taken up now.
    func adoptExpectation(_ expectation: RolloutExpectation) {
        let parked = core.withLock { state -> (UpgradeOrder, OrderOrigin)? in
            state.expectations[expectation.rolloutID] = expectation
            state.pausedRollouts.remove(expectation.rolloutID)
            // Only the latest few rollouts matter; older ones are finished.
            while state.expectations.count > 4, let oldest = state.expectations.keys.min() {
                state.expectations[oldest] = nil
            }
            guard let parked = state.parkedOrder, parked.0.rolloutID == expectation.rolloutID else { return nil }
            state.parkedOrder = nil
            return parked
        }
        pauseChanged.notify()
        if let (order, origin) = parked { startUpgrade(order, origin: origin) }
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

    /// An abort stops a download; an install in flight completes or rolls back, never stops
    /// half-way (cancelling it would record as failed an agent that ends on the new release).
    /// A pause from the coordinator holds a download, once finished, before its install until
    /// the resume. Only the coordinator's pause holds: a leader could otherwise stall its
    /// members for ever (it can abort them, which ends their part visibly).
    func controlOwnUpgrade(_ control: RolloutControl, fromCoordinator: Bool) {
        if fromCoordinator && (control.action == .pause || control.action == .resume) {
            setPaused(control.rolloutID, control.action == .pause)
            return
        }
        guard control.action == .abort else { return }
        let task = core.withLock { state -> Task<Void, Never>? in
            guard state.upgrade?.rolloutID == control.rolloutID, state.progress?.state != .installing else { return nil }
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
            manifest = try acceptableManifest(order.signedManifest, rolloutID: order.rolloutID, version: order.releaseVersion)
        } catch let error as OrderMismatch {
            // A leader's order the coordinator did not name: refused, and nothing changes here
            // (the rollout's timeouts and failover deal with a leader that only withholds).
            if case .leader(let target) = origin {
                refuse("leader \(target.leaderID) ordered rollout \(order.rolloutID): \(error.message)")
                reportRefusedOrder(order, leaderID: target.leaderID, epoch: target.epoch, reason: error.message)
            } else {
                refuse("the coordinator's order for rollout \(order.rolloutID): \(error.message)")
            }
            return
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
            guard let signed = order.signedManifest else { throw RuntimeError(.refusedRelease, "the order carries no signed manifest") }
            let artifact = try staging.artifact(for: signed, manifest: manifest)
            try Self.checkSpace(for: artifact)
            progress.state = .downloading
            progress.bytesTotal = manifest.size
            progress.bytesDone = artifact.verifiedBytes
            setProgress(progress)
            try await download(artifact, order: order, origin: origin)
            try Task.checkCancellation()
            await holdWhilePaused(order.rolloutID)
            try Task.checkCancellation()
            try await installStaged(artifact, progress: progress, healthTimeout: .seconds(Int(order.effectiveHealthTimeoutSeconds)))
        } catch {
            // A stopping agent leaves its progress as it was: the staged chunks resume next time.
            if isStopped { return }
            // So does one that became the leader, or whose upgrade gave way to another rollout's.
            if Task.isCancelled && core.value.upgrade?.rolloutID != order.rolloutID { return }
            progress.state = .failed
            progress.error = Task.isCancelled ? "aborted before it was installed" : "\(error)"
            log("rollout \(order.rolloutID): \(progress.error)")
            setProgress(progress)
        }
    }

    func setPaused(_ rolloutID: UInt64, _ paused: Bool) {
        core.withLock { state in
            if paused { state.pausedRollouts.insert(rolloutID) } else { state.pausedRollouts.remove(rolloutID) }
        }
        pauseChanged.notify()
    }

    /// Stop means stop: while the coordinator has the rollout paused, a downloaded release is
    /// not installed. Its resume, an expectation for the rollout (the coordinator sends those
    /// only while it runs, so a lost resume cannot hold it for ever) or an abort ends the wait.
    private func holdWhilePaused(_ rolloutID: UInt64) async {
        var logged = false
        while !Task.isCancelled {
            let seen = pauseChanged.generation
            guard core.value.pausedRollouts.contains(rolloutID) else { return }
            if !logged {
                log("rollout \(rolloutID) is paused: the downloaded release is installed when it resumes")
                logged = true
            }
            await pauseChanged.wait(after: seen)
        }
    }

    /// The manifest, if the order is what the coordinator said rollout `rolloutID` installs
    /// (else `OrderMismatch`), it verifies against a pinned key, names this agent's program
    /// and `version`, and it is not below the install floor without a valid downgrade
    /// authorisation (services.md §4.5). A leader's `rollback` flag counts for nothing.
    func acceptableManifest(_ signed: SignedManifest?, rolloutID: UInt64, version: String) throws -> Manifest {
        guard let expectation = core.value.expectations[rolloutID] else {
            throw OrderMismatch("the coordinator has not said what rollout \(rolloutID) installs")
        }
        guard let signed else { throw OrderMismatch("the order carries no signed manifest") }
        guard version == expectation.releaseVersion, signed.manifestDigest == expectation.manifestSHA256 else {
            throw OrderMismatch(
                "it names release \(version) (manifest \(signed.manifestDigest.hex.prefix(16))), but the coordinator says rollout \(rolloutID) installs \(expectation.releaseName) \(expectation.releaseVersion) (manifest \(expectation.manifestSHA256?.hex.prefix(16) ?? "none"))")
        }
        let manifest = try verifier.verify(signed)
        guard manifest.name == configuration.programName, manifest.name == expectation.releaseName else {
            throw ReleaseError(.wrongProgram, "the release is for \"\(manifest.name)\", and this agent runs \"\(configuration.programName)\"")
        }
        guard manifest.version == version else {
            throw RuntimeError(.refusedRelease, "the order names version \(version) but its manifest is for \(manifest.version)")
        }
        try verifier.checkVersion(of: manifest, floor: floor.version, downgrade: expectation.downgrade, now: unixSeconds())
        return manifest
    }

    /// A refused leader order is a security event: the coordinator records it against the
    /// leader in its audit log.
    private func reportRefusedOrder(_ order: UpgradeOrder, leaderID: String, epoch: UInt64, reason: String) {
        counters.withLock { $0.ordersRefused += 1 }
        let report = FaultReport(
            rolloutID: order.rolloutID, sourceID: leaderID, releaseVersion: order.releaseVersion, leaderEpoch: epoch,
            detail: reason, orderRefused: true)
        startBackground {
            do {
                _ = try await self.coordinator.unary(CoordinatorService.reportFault, report, options: self.callOptions)
            } catch {
                self.warn("reporting the refused order of leader \(leaderID) failed: \(error)")
            }
        }
    }

    /// Fails at once, with the sizes, when the rest of the release cannot fit where it is staged.
    static func checkSpace(for artifact: StagedArtifact) throws(RuntimeError) {
        let needed = artifact.manifest.size - artifact.verifiedBytes
        let free = freeBytes(artifact.path)
        guard needed <= free else {
            throw RuntimeError(.noSpace, "no space for release \(artifact.manifest.version) in \(artifact.path): \(needed) more bytes needed, \(free) bytes free")
        }
    }

    /// Fetch attempts in a row without a verified chunk before a member's attempt fails.
    static let downloadAttemptsWithoutProgress = 12

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
                    self.configuration.metrics.bytesReceived.add(UInt64(bytes), artifact.manifest.version, source.isLeader ? "leader" : "coordinator")
                    self.setDownloadBytes(artifact.verifiedBytes, rolloutID: order.rolloutID)
                }
            } catch let error as RuntimeError where error.code == .noSpace {
                throw error  // retrying cannot help: the attempt fails with the sizes
            } catch let fault as ChunkFault {
                try await reportBadChunk(fault, rolloutID: order.rolloutID, version: artifact.manifest.version)
                continue
            } catch {
                if Task.isCancelled { throw CancellationError() }
                failures += 1
                if source.isLeader { leaderFailures += 1 }
                warn("fetching \(artifact.manifest.version) from \(source.kind) failed: \(error)")
                if artifact.verifiedChunks == before && failures >= Self.downloadAttemptsWithoutProgress {
                    // Bounded: the attempt fails with the reason instead of fetching forever.
                    throw RuntimeError(.refusedRelease, "gave up fetching \(artifact.manifest.version) after \(failures) attempts in a row without progress; the last from the \(source.kind): \(error)")
                }
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
        configuration.metrics.chunkVerificationFailures.add(1, sourceID.isEmpty ? "coordinator" : "leader")
        warn("discarded \(fault)")
        configuration.onEvent(.faultReported(chunk: fault.index, sourceID: sourceID))
        let report = FaultReport(
            rolloutID: rolloutID, sourceID: sourceID, releaseVersion: version, chunkIndex: fault.index,
            leaderEpoch: core.value.epoch, detail: "\(fault.reason)")
        var hint = FetchHint(rolloutID: rolloutID, source: .coordinator, reason: "a bad chunk from \(sourceID.isEmpty ? "the coordinator" : sourceID)")
        do {
            hint = try await coordinator.unary(CoordinatorService.reportFault, report, options: callOptions)
        } catch {
            warn("reporting the bad chunk failed (\(error)); fetching from the coordinator")
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
    /// `healthTimeout` is the rollout's: the one deadline, coordinator → leader → member → upgrader.
    func installStaged(_ artifact: StagedArtifact, progress start: AgentProgress, healthTimeout: Duration) async throws {
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
        // An authorised downgrade lowers the floor before the switch: the release that comes
        // up (perhaps as a new process) must not find a floor above itself. A local rollback
        // puts the running version back, and the next start raises the floor to it again.
        let downgrade = InstallFloor.isHigher(floor.version, than: artifact.manifest.version)
        if downgrade { try floor.set(artifact.manifest.version) }
        let outcome = try await installer.install(artifact: artifact.path, manifest: artifact.manifest, healthTimeout: healthTimeout)
        switch outcome {
        case .running(let version):
            // Durable before it is reported: nothing can take this agent below it again.
            if downgrade { try floor.set(version) } else { try floor.raise(to: version) }
            core.withLock { $0.mainVersion = version }
            progress.state = .healthy
            progress.error = ""
        case .rolledBack(let reason):
            if downgrade { try floor.set(core.value.mainVersion) }
            progress.state = .rolledBack
            progress.error = reason
        }
        log("rollout \(progress.rolloutID): \(progress.state) on \(core.value.mainVersion)")
        setProgress(progress)
    }
}

/// A leader's order that is not what the coordinator named: refused without changing anything.
struct OrderMismatch: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { "unexpected-release: \(message)" }
}

/// Now, in unix seconds (downgrade authorisations expire by the wall clock).
func unixSeconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(max(0, now.tv_sec))
}
