import CascadeAPI
import Testing
@testable import CascadeAgentRuntime

@Suite("Idle sampler")
struct IdleSamplerTests {
    @Test("Memory idle is MemAvailable over MemTotal")
    func memoryIdleFromMeminfo() {
        let text = "MemTotal:        8000000 kB\nMemFree:          100000 kB\nMemAvailable:    2000000 kB\n"
        #expect(IdleSampler.parseMemoryIdle(text) == 0.25)
        #expect(IdleSampler.parseMemoryIdle("MemTotal: 0 kB\n") == nil)
    }

    @Test("Sampling /proc gives ratios within [0, 1]; an override is reported as is")
    func samplesAndOverride() {
        let sampler = IdleSampler(override: nil)
        sampler.sample()
        let ratios = sampler.current
        #expect(ratios.memoryPPM > 0 && ratios.memoryPPM <= 1_000_000)
        #expect(ratios.cpuPPM <= 1_000_000)
        let fixed = IdleRatios(cpuPPM: 123, memoryPPM: 456)
        #expect(IdleSampler(override: fixed).current == fixed)
    }
}
