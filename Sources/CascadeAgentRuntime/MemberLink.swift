import CascadeAPI
import CascadeNet
import CascadeRPC

/// Which leader a member follows, under which epoch.
struct LeaderTarget: Hashable, Sendable {
    let leaderID: String
    let address: String
    let epoch: UInt64
}

/// A member's link to its leader: the Join stream (reports up, instructions down). When it
/// drops, the member asks the coordinator for its assignment again and joins whoever leads now.
extension AgentRuntime {
    func followLeader(_ assignment: Assignment) {
        let target = LeaderTarget(leaderID: assignment.leaderID, address: assignment.leaderAddress, epoch: assignment.leaderEpoch)
        let replaced = memberLink.withLock { link -> Task<Void, Never>? in
            if link?.target == target { return nil }
            let old = link?.task
            link = (target, Task { await self.runMemberLink(target) })
            return old
        }
        replaced?.cancel()
    }

    func stopMemberLink() {
        memberLink.withLock { link -> Task<Void, Never>? in
            defer { link = nil }
            return link?.task
        }?.cancel()
    }

    private func runMemberLink(_ target: LeaderTarget) async {
        var failures = 0
        while !Task.isCancelled && !isStopped {
            if let client = leaderClient(for: target.address) {
                let joined = Locked(false)
                do {
                    try await join(target, client: client, joined: joined)
                    log("the join stream with leader \(target.leaderID) ended")
                } catch {
                    if Task.isCancelled { return }
                    warn("join with leader \(target.leaderID) at \(target.address) failed: \(error)")
                }
                if joined.value { failures = 0 }
            }
            if Task.isCancelled { return }
            failures += 1
            // The leader may be gone: the coordinator says who leads now (adopting a new
            // assignment replaces this task).
            do { try await refreshAssignment() } catch { warn("re-registering failed: \(error)") }
            if Task.isCancelled { return }
            await pause(configuration.retryBackoff.delay(afterFailures: failures))
        }
    }

    private func join(_ target: LeaderTarget, client: RPCClient, joined: Locked<Bool>) async throws {
        let connection = try await client.connection()
        guard connection.peer?.id == target.leaderID else {
            throw RuntimeError(.wrongPeer, "the leader at \(target.address) is \(connection.peer.map { "\($0)" } ?? "anonymous"), not agent \(target.leaderID)")
        }
        try await connection.bidirectional(LeaderService.join, options: .epoch(target.epoch)) { writer, instructions in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await self.pumpReports(to: writer, signals: [self.progressChanged]) {
                        self.report(forCoordinator: false)
                    }
                }
                group.addTask {
                    for try await instruction in instructions {
                        joined.withLock { $0 = true }
                        self.handleLeaderInstruction(instruction, from: target)
                    }
                }
                _ = try await group.next()
                group.cancelAll()
            }
        }
    }

    /// Instructions from a leader count only if it is the current leader under the held epoch.
    func handleLeaderInstruction(_ instruction: Instruction, from target: LeaderTarget) {
        let state = core.value
        guard state.assignment?.role == .member, state.assignment?.leaderID == target.leaderID,
              target.epoch == state.epoch, instruction.leaderEpoch == state.epoch
        else {
            refuse("an instruction from \(target.leaderID) with leader epoch \(instruction.leaderEpoch); this agent follows \(state.assignment?.leaderID ?? "nobody") under epoch \(state.epoch)")
            return
        }
        if instruction.assignment != nil || instruction.clusterRollout != nil || instruction.expectation != nil {
            refuse("assignments, cluster rollouts and expectations come from the coordinator, not from leader \(target.leaderID)")
            return
        }
        if let control = instruction.control { controlOwnUpgrade(control, fromCoordinator: false) }
        if let hint = instruction.fetchHint { adoptFetchHint(hint) }
        if let cue = instruction.secondInstructionCue { sendSecondInstruction(cue) }
        if let order = instruction.upgrade { startUpgrade(order, origin: .leader(target)) }
    }

    /// The sixth server's part: tell the leader to upgrade itself (the second instruction).
    func sendSecondInstruction(_ cue: SecondInstructionCue) {
        startBackground {
            var failures = 0
            while !Task.isCancelled && failures < 5 {
                let state = self.core.value
                guard let assignment = state.assignment, assignment.role == .member,
                      let client = self.leaderClient(for: assignment.leaderAddress)
                else { return }
                do {
                    let connection = try await client.connection()
                    guard connection.peer?.id == assignment.leaderID else {
                        throw RuntimeError(.wrongPeer, "the leader at \(assignment.leaderAddress) is not \(assignment.leaderID)")
                    }
                    let request = UpgradeLeaderRequest(
                        rolloutID: cue.rolloutID, leaderEpoch: state.epoch, senderID: state.agentID,
                        releaseVersion: cue.releaseVersion)
                    _ = try await connection.unary(LeaderService.upgradeLeader, request, options: self.callOptions)
                    self.counters.withLock { $0.secondInstructionsSent += 1 }
                    self.log("sent the second instruction for rollout \(cue.rolloutID) to leader \(assignment.leaderID)")
                    self.configuration.onEvent(.secondInstructionSent(leaderID: assignment.leaderID, rolloutID: cue.rolloutID))
                    return
                } catch {
                    failures += 1
                    self.warn("the second instruction to \(assignment.leaderID) failed: \(error)")
                    await pause(self.configuration.retryBackoff.delay(afterFailures: failures))
                }
            }
        }
    }
}
