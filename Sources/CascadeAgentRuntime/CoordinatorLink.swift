import CascadeAPI
import CascadeNet
import CascadeRPC

/// The agent's link to the coordinator: Register, then the Session stream (reports up,
/// instructions down); on any failure, back off, register again and reopen.
extension AgentRuntime {
    func runCoordinatorLink() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await refreshAssignment()
                failures = 0
                try await holdSession()
                log("the coordinator session ended; registering again")
            } catch {
                if Task.isCancelled { return }
                // A refused handshake says its cause and fix; anything else as it came.
                if let tls = (error as? RPCError)?.tls, let reason = tls.reason {
                    let why = "TLS with the coordinator at \(configuration.coordinatorAddress) failed: \(tls.explanation)"
                    warn("coordinator link: \(why)", ["reason": reason.rawValue])
                    configuration.onEvent(.coordinatorLinkFailed(why))
                } else if let denied = error as? RPCError, denied.code == .permissionDenied,
                          let identity = try? clientTLS.localIdentity, identity.role != .agent {
                    // Another role's certificate in fleet.conf: say so, not just "permission denied".
                    let why = "the coordinator refused this agent's certificate \(configuration.tls.certificateChainFile): it is the certificate of "
                        + "\(identity) (\(identity.uri)), and an agent needs one with the SAN URI cascade://agent/<id> (\(denied.message))"
                    warn("coordinator link: \(why)", ["reason": "wrong-role"])
                    configuration.onEvent(.coordinatorLinkFailed(why))
                } else {
                    warn("coordinator link: \(error)")
                    configuration.onEvent(.coordinatorLinkFailed("\(error)"))
                }
            }
            failures += 1
            await pause(configuration.retryBackoff.delay(afterFailures: failures))
        }
    }

    func registerRequest() -> RegisterRequest {
        let state = core.value
        return RegisterRequest(
            address: configuration.bindAddress, memberPort: UInt32(memberPort), mainVersion: state.mainVersion,
            upgraderVersion: configuration.currentUpgraderVersion?() ?? configuration.upgraderVersion, idle: idle.current, resume: state.progress,
            hostname: configuration.hostname)
    }

    /// Asks the coordinator for this agent's assignment and adopts it.
    func refreshAssignment() async throws {
        let assignment = try await coordinator.unary(CoordinatorService.register, registerRequest(), options: callOptions)
        counters.withLock { $0.registrations += 1 }
        configuration.metrics.registrations.add()
        adopt(assignment)
    }

    private func holdSession() async throws {
        let connection = try await coordinator.connection()
        try await connection.bidirectional(CoordinatorService.session) { writer, instructions in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await self.pumpReports(to: writer, signals: [self.progressChanged, self.clusterChanged]) {
                        self.counters.withLock { $0.reportsSent += 1 }
                        self.configuration.metrics.heartbeats.add()
                        return self.report(forCoordinator: true)
                    }
                }
                group.addTask {
                    for try await instruction in instructions {
                        self.handleCoordinatorInstruction(instruction)
                    }
                }
                _ = try await group.next()
                group.cancelAll()
            }
        }
    }

    func report(forCoordinator: Bool) -> AgentReport {
        let state = core.value
        return AgentReport(
            leaderEpoch: state.epoch, heartbeat: heartbeat(), progress: state.progress,
            cluster: forCoordinator ? clusterReport() : nil)
    }

    /// Adopts an assignment unless its epoch is older than the one already held.
    func adopt(_ assignment: Assignment) {
        let held = core.withLock { state -> UInt64? in
            guard assignment.leaderEpoch >= state.epoch else { return state.epoch }
            state.assignment = assignment
            state.epoch = assignment.leaderEpoch
            if !assignment.agentID.isEmpty { state.agentID = assignment.agentID }
            if assignment.reportIntervalMs > 0 { state.reportInterval = .milliseconds(Int64(assignment.reportIntervalMs)) }
            return nil
        }
        if let held {
            refuse("an assignment with leader epoch \(assignment.leaderEpoch), older than the held epoch \(held)")
            return
        }
        configuration.metrics.assigned(leaderID: assignment.leaderID)
        configuration.onEvent(.assigned(role: assignment.role, leaderID: assignment.leaderID, epoch: assignment.leaderEpoch))
        if assignment.role == .leader {
            yieldOwnUpgradeToLeadership()
            stopMemberLink()
            forgetLeaderClients(except: "")
            activateLeader(assignment)
        } else {
            deactivateLeader()
            forgetLeaderClients(except: assignment.leaderAddress)
            followLeader(assignment)
        }
    }

    /// Instructions from the coordinator: refused when their epoch is older than the held one,
    /// so a deposed leader's era can never steer this agent.
    func handleCoordinatorInstruction(_ instruction: Instruction) {
        let held = core.value.epoch
        guard instruction.leaderEpoch >= held else {
            refuse("a coordinator instruction with leader epoch \(instruction.leaderEpoch), older than the held epoch \(held)")
            return
        }
        if let assignment = instruction.assignment { adopt(assignment) }
        // Before any order of the same instruction: it is what those orders are checked against.
        if let expectation = instruction.expectation { adoptExpectation(expectation) }
        if let order = instruction.clusterRollout { startClusterRollout(order) }
        if let control = instruction.control {
            controlRollout(control)
            controlOwnUpgrade(control, fromCoordinator: true)
        }
        if let hint = instruction.fetchHint { adoptFetchHint(hint) }
        if let cue = instruction.secondInstructionCue { sendSecondInstruction(cue) }
        if let order = instruction.upgrade { startUpgrade(order, origin: .coordinator) }
    }

    func adoptFetchHint(_ hint: FetchHint) {
        core.withLock { $0.fetchHint = hint }
        log("fetch hint for rollout \(hint.rolloutID): from the \(hint.source) (\(hint.reason))")
    }
}
