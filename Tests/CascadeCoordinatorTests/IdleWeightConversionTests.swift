import CascadeAPI
@testable import CascadeCoordinator
import CascadeStore
import Testing

@Suite("Idle weights sent to leaders")
struct IdleWeightConversionTests {
    @Test("the coordinator's weights become the smallest integer parts in proportion, or a million-scale when inexact",
          arguments: [
              (0.6, 0.4, 3 as UInt32, 2 as UInt32),
              (0.2, 0.8, 1, 4),
              (0.57, 0.43, 57, 43),  // 0.57 × 100 is not exactly 57 in binary floating point
              (1, 0, 1, 0),
              (0, 2.5, 0, 1),
              (1.0 / 3.0, 2.0 / 3.0, 500_000, 1_000_000),
              (7_000_000_000, 1, 1_000_000, 0),
          ])
    func conversion(cpu: Double, memory: Double, expectedCPU: UInt32, expectedMemory: UInt32) throws {
        let weights = CascadeAPI.IdleWeights(try CascadeStore.IdleWeights(cpu: cpu, memory: memory))
        #expect(weights == CascadeAPI.IdleWeights(cpu: expectedCPU, memory: expectedMemory))
    }
}
