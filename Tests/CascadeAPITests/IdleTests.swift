@testable import CascadeAPI
import CascadeRPC
import CascadeWire
import Testing

@Suite("Idle ratios, weights and epochs")
struct IdleTests {
    @Test("ratios become parts per million, rounded and clamped to [0, 1]")
    func ratios() {
        #expect(IdleRatios(cpu: 0.75, memory: 0.5) == IdleRatios(cpuPPM: 750_000, memoryPPM: 500_000))
        #expect(IdleRatios(cpu: 0.1234565, memory: 0).cpuPPM == 123_457)
        #expect(IdleRatios(cpu: 1.5, memory: -0.2) == IdleRatios(cpuPPM: 1_000_000, memoryPPM: 0))
        #expect(IdleRatios(cpu: .nan, memory: .infinity) == IdleRatios(cpuPPM: 0, memoryPPM: 1_000_000))
        #expect(IdleRatios(cpuPPM: 2_000_000).cpuPPM == 1_000_000)
        #expect(IdleRatios(cpuPPM: 250_000).cpu == 0.25)
    }

    @Test("a ratio above one million ppm on the wire is value-out-of-range")
    func ratioOnWire() throws {
        #expect(try IdleRatios(serializedBytes: [0x08, 0xc0, 0x84, 0x3d]).cpuPPM == 1_000_000)
        let error = captureError(WireError.self) { _ = try IdleRatios(serializedBytes: [0x10, 0xc1, 0x84, 0x3d]) }
        #expect(error?.kind == .valueOutOfRange)
        #expect(error?.message == "field 2 is a ratio in parts per million and must be at most 1000000, not 1000001")
    }

    @Test("agents rank by exact integer weight, then by the smaller id")
    func ranking() {
        let weights = IdleWeights.default
        #expect(weights == IdleWeights(cpu: 3, memory: 2))
        let busyCPU = IdleRatios(cpuPPM: 200_000, memoryPPM: 900_000)  // 3×0.2 + 2×0.9 = 2.4
        let idleCPU = IdleRatios(cpuPPM: 800_000, memoryPPM: 0)        // 3×0.8 = 2.4
        #expect(weights.weight(of: busyCPU) == weights.weight(of: idleCPU))
        #expect(weights.ranks(("a2", busyCPU), before: ("a10", idleCPU)) == false)  // "a10" < "a2" byte-wise
        #expect(weights.ranks(("a10", idleCPU), before: ("a2", busyCPU)))
        let idler = IdleRatios(cpuPPM: 800_001, memoryPPM: 0)
        #expect(weights.best(of: [("a1", busyCPU), ("z9", idler), ("a10", idleCPU)]) == "z9")
        #expect(weights.best(of: [(id: String, idle: IdleRatios)]()) == nil)
        #expect(weights.normalizedWeight(of: IdleRatios(cpuPPM: 1_000_000, memoryPPM: 1_000_000)) == 1)
        #expect(IdleWeights(cpu: 0, memory: 0).normalizedWeight(of: busyCPU) == 0)
        #expect(IdleWeights(cpu: 1, memory: 0).best(of: [("a", busyCPU), ("b", idleCPU)]) == "b")
    }

    @Test("only the receiver's own epoch is accepted, anything else is FAILED_PRECONDITION")
    func epochs() throws {
        try checkEpoch(5, current: 5)
        let stale = captureError(RPCError.self) { try checkEpoch(4, current: 5) }
        #expect(stale == RPCError(.failedPrecondition, "leader epoch 4 is stale: the current epoch is 5"))
        let newer = captureError(RPCError.self) { try checkEpoch(6, current: 5) }
        #expect(newer == RPCError(.failedPrecondition, "leader epoch 6 is newer than this node's epoch 5: register again"))
        #expect(APIError.unknownRelease("9.9") == RPCError(.notFound, "no release 9.9"))
        #expect(APIError.notLeader("a2", leaderID: "a1").code == .failedPrecondition)
        #expect(APIError.illegalTransition(rollout: 7, from: .succeeded, action: "pause").message
            == "rollout 7 is succeeded and cannot pause")
    }
}
