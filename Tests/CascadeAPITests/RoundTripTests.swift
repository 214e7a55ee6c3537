@testable import CascadeAPI
import CascadeWire
import Testing

@Suite("Message round trips")
struct RoundTripTests {
    @Test("every message type survives encode then decode unchanged, and re-encodes to the same bytes", arguments: Samples.all)
    func roundTrip(_ sample: Sample) throws {
        let (equal, reencoded) = try sample.check()
        #expect(equal)
        #expect(reencoded == sample.encoded)
    }

    @Test("default values are omitted, so an all-default message encodes to nothing")
    func defaultsOmitted() {
        #expect(RegisterRequest().serializedBytes() == [])
        #expect(Instruction().serializedBytes() == [])
        #expect(RolloutStatus().serializedBytes() == [])
        #expect(StateCounts().serializedBytes() == [])
        #expect(AgentRow().serializedBytes() == [])
    }

    @Test("present but empty nested messages are kept; value-like ones are omitted when empty")
    func presence() throws {
        // An empty progress is still "a progress report" and must survive.
        let report = AgentReport(progress: AgentProgress())
        #expect(report.serializedBytes() == [0x1a, 0x00])
        #expect(try AgentReport(serializedBytes: [0x1a, 0x00]).progress == AgentProgress())
        #expect(try AgentReport(serializedBytes: []).progress == nil)
        // Idle ratios and policies have no "absent" meaning: an all-zero one is not written.
        #expect(RegisterRequest(idle: IdleRatios()).serializedBytes() == [])
        #expect(StartRolloutRequest(policy: RolloutPolicy()).serializedBytes() == [])
        // ...and an explicit empty one reads the same as none.
        #expect(try RegisterRequest(serializedBytes: [0x2a, 0x00]) == RegisterRequest())
    }

    @Test("enum values this build does not know are kept and written back unchanged")
    func unknownEnums() throws {
        let bytes: [UInt8] = [0x10, 0x63]  // AgentProgress.state = 99
        let progress = try AgentProgress(serializedBytes: bytes)
        #expect(progress.state == .unknown(99))
        #expect(!progress.state.isTerminal)
        #expect(progress.serializedBytes() == bytes)
        #expect(AgentRole(wireValue: 7).description == "unknown(7)")
        #expect(RolloutState(wireValue: 9) == .unknown(9))
        #expect(ClusterPhase(wireValue: 3) == .leader)
        #expect(FetchSource(wireValue: 0) == .unspecified)
        #expect(RolloutAction(wireValue: 3) == .abort)
        for state in AgentRolloutState.allCases { #expect(AgentRolloutState(wireValue: state.wireValue) == state) }
        for state in RolloutState.allCases { #expect(RolloutState(wireValue: state.wireValue) == state) }
    }

    @Test("state counts keep one field per state, and later states are skipped")
    func stateCounts() throws {
        var counts = StateCounts()
        counts[.healthy] = 4
        counts[.rolledBack] = 1
        counts[.unknown(12)] = 9  // no field for it: ignored
        #expect(counts.serializedBytes() == [0x28, 0x04, 0x38, 0x01])
        #expect(counts.total == 5)
        // Field 8 would be a state added later: an old reader skips it.
        #expect(try StateCounts(serializedBytes: [0x28, 0x04, 0x40, 0x02]) == StateCounts(healthy: 4))
    }

    @Test("the chunk bitmap of ReleaseStatus names present and missing chunks")
    func bitmap() {
        let info = ReleaseInfo(chunkCount: 10)
        let status = ReleaseStatusResponse(release: info, present: [0, 2, 9, 10, -1])
        #expect(status.presentBitmap == [0b0000_0101, 0b0000_0010])
        #expect(status.hasChunk(9) && !status.hasChunk(1) && !status.hasChunk(10) && !status.hasChunk(-1))
        #expect(status.missingChunks == [1, 3, 4, 5, 6, 7, 8])
        #expect(ReleaseStatusResponse().missingChunks == [])
        // A chunk count no manifest can have does not size an allocation.
        #expect(ReleaseStatusResponse(release: ReleaseInfo(chunkCount: .max)).missingChunks.count == APILimits.maxChunkCount)
    }

    @Test("policy zero values mean the documented defaults")
    func policyDefaults() {
        let policy = RolloutPolicy()
        #expect(policy.effectiveMaxUnavailable == 1)
        #expect(policy.effectiveMaxParallelClusters == 1)
        #expect(policy.effectiveHealthTimeoutSeconds == 120)
        #expect(RolloutPolicy(failureBudgetPercent: 10).failureAllowance(agents: 25) == 2)
        #expect(RolloutPolicy(failureBudgetPercent: 250).failureAllowance(agents: 4) == 4)
        #expect(Assignment().effectiveReportIntervalMs == 5000)
    }
}
