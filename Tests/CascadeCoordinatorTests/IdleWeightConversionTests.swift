import CascadeAPI
@testable import CascadeCoordinator
import CascadeStore
import Testing

@Suite("Idle weights sent to leaders")
struct IdleWeightConversionTests {
    @Test("the coordinator's weights become the smallest integer parts in proportion, or a million-scale when inexact, never dropping a weight",
          arguments: [
              (0.6, 0.4, 3 as UInt32, 2 as UInt32),
              (0.2, 0.8, 1, 4),
              (0.57, 0.43, 57, 43),  // 0.57 × 100 is not exactly 57 in binary floating point
              (1, 0, 1, 0),
              (0, 2.5, 0, 1),
              (1.0 / 3.0, 2.0 / 3.0, 500_000, 1_000_000),
              (7_000_000_000, 1, 1_000_000, 1),  // the smaller weight keeps at least 1
              (4e-7, 6e-7, 666_667, 1_000_000),  // tiny weights do not round to 0 (the default)
              (1, 5e-7, 1_000_000, 1),
          ])
    func conversion(cpu: Double, memory: Double, expectedCPU: UInt32, expectedMemory: UInt32) throws {
        let weights = CascadeAPI.IdleWeights(try CascadeStore.IdleWeights(cpu: cpu, memory: memory))
        #expect(weights == CascadeAPI.IdleWeights(cpu: expectedCPU, memory: expectedMemory))
    }
}
