import CascadeAPI
@testable import CascadeAgentRuntime
import Testing

@Suite("The leader's pace: slots, the failure limit, the cue")
struct RolloutPacerTests {
    static let members = ["m1", "m2", "m3", "m4", "m5"]

    static func pacer(failureLimit: UInt32, maxUnavailable: UInt32 = 2) -> RolloutPacer {
        RolloutPacer(
            order: ClusterRolloutOrder(rolloutID: 9, releaseVersion: "1.1", policy: RolloutPolicy(maxUnavailable: maxUnavailable),
                                       failureLimit: failureLimit),
            memberIDs: members)
    }

    static func report(_ pacer: inout RolloutPacer, _ member: String, _ state: AgentRolloutState) {
        pacer.update(member, progress: AgentProgress(rolloutID: 9, state: state, releaseVersion: "1.1"), mainVersion: nil, rejoined: false)
    }

    @Test("at its failure limit the leader instructs nobody more and cues no second instruction; what is in flight goes on")
    func failureLimitStops() {
        var pacer = Self.pacer(failureLimit: 2)
        let all = Set(Self.members)
        #expect(pacer.nextToInstruct(connected: all) == ["m1", "m2"])
        Self.report(&pacer, "m1", .rolledBack)
        // One failure is within the limit: its slot is refilled.
        #expect(!pacer.budgetSpent)
        #expect(pacer.nextToInstruct(connected: all) == ["m3"])
        Self.report(&pacer, "m2", .failed)
        // The second one spends the budget: the free slot stays free.
        #expect(pacer.budgetSpent)
        #expect(pacer.nextToInstruct(connected: all).isEmpty)
        Self.report(&pacer, "m3", .healthy)
        #expect(pacer.nextToInstruct(connected: all).isEmpty)
        #expect(pacer.states["m4"] == .pending && pacer.states["m5"] == .pending)
        // Even with every member done, no second instruction.
        for member in ["m4", "m5"] { Self.report(&pacer, member, .healthy) }
        #expect(pacer.memberToCue(idle: [:], connected: all, weights: .default) == nil)
    }

    @Test("a limit of 0 (an older coordinator) is no limit; a re-sent order can lower it")
    func noLimitAndLowered() {
        var pacer = Self.pacer(failureLimit: 0, maxUnavailable: 1)
        let all = Set(Self.members)
        for member in Self.members.prefix(3) {
            #expect(pacer.nextToInstruct(connected: all) == [member])
            Self.report(&pacer, member, .rolledBack)
        }
        #expect(!pacer.budgetSpent)
        pacer.failureLimit = 3
        #expect(pacer.budgetSpent)
        #expect(pacer.nextToInstruct(connected: all).isEmpty)
    }
}
