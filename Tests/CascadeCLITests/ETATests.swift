import CascadeCLI
import Testing

@Suite("ETA estimation")
struct ETATests {
    @Test("A steady rate gives an exact estimate")
    func steady() {
        var estimator = ETAEstimator()
        #expect(estimator.remaining(total: 1000) == nil)
        for second in 0...4 {
            estimator.observe(done: Int64(second * 100), at: .seconds(second))
        }
        #expect(estimator.bytesPerSecond == 100)
        #expect(estimator.remaining(total: 1000) == .seconds(6))
    }

    @Test("A rate change is followed gradually, by elapsed time rather than by sample count")
    func smoothing() throws {
        var coarse = ETAEstimator(timeConstant: .seconds(2))
        coarse.observe(done: 0, at: .zero)
        coarse.observe(done: 100, at: .seconds(1))
        coarse.observe(done: 500, at: .seconds(2))  // jumps to 400 B/s
        let rate = try #require(coarse.bytesPerSecond)
        #expect(rate > 100 && rate < 400)

        // The same second split into ten samples lands close to the same rate.
        var fine = ETAEstimator(timeConstant: .seconds(2))
        fine.observe(done: 0, at: .zero)
        fine.observe(done: 100, at: .seconds(1))
        for step in 1...10 {
            fine.observe(done: 100 + Int64(step * 40), at: .seconds(1) + .milliseconds(step * 100))
        }
        let fineRate = try #require(fine.bytesPerSecond)
        #expect(abs(fineRate - rate) < 1)
    }

    @Test("Done is zero, a stall or no time passing is unknown, and a restart starts over")
    func edges() {
        var estimator = ETAEstimator()
        estimator.observe(done: 50, at: .seconds(1))
        estimator.observe(done: 50, at: .seconds(1))  // no time passed: ignored
        #expect(estimator.bytesPerSecond == nil)
        estimator.observe(done: 50, at: .seconds(2))  // stalled: rate zero
        #expect(estimator.remaining(total: 100) == nil)
        #expect(estimator.remaining(total: 50) == .zero)
        estimator.observe(done: 10, at: .seconds(3))  // restarted download
        #expect(estimator.bytesPerSecond == nil)
        estimator.observe(done: 30, at: .seconds(4))
        #expect(estimator.remaining(total: 130) == .seconds(5))
    }

    @Test("A tracker keeps one estimator per name")
    func tracker() {
        var tracker = ETATracker()
        #expect(tracker.observe("a", done: 0, total: 100, at: .zero) == nil)
        #expect(tracker.observe("b", done: 0, total: 100, at: .zero) == nil)
        #expect(tracker.observe("a", done: 10, total: 100, at: .seconds(1)) == .seconds(9))
        #expect(tracker.observe("b", done: 50, total: 100, at: .seconds(1)) == .seconds(1))
    }
}
