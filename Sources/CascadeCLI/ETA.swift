import Foundation

/// Estimates time to completion from (bytes done, time) samples with exponential smoothing.
///
/// The smoothing weight depends on the time between samples (a time constant, not a per-sample
/// factor), so irregular polling neither over- nor under-reacts; a drop in bytes done (a restarted
/// download) starts over rather than producing a negative rate.
public struct ETAEstimator: Sendable, Equatable {
    /// How quickly the rate follows changes: about 63% of a step after this much time.
    public let timeConstant: Duration
    /// The smoothed rate in bytes per second, nil until two samples are apart in time.
    public private(set) var bytesPerSecond: Double?
    private var last: (time: Duration, done: Int64)?

    /// An estimator; `timeConstant` trades responsiveness for stability (5 s by default).
    public init(timeConstant: Duration = .seconds(5)) {
        self.timeConstant = timeConstant
    }

    /// Records that `done` bytes were complete at `time` (any monotonic origin, e.g. since start).
    public mutating func observe(done: Int64, at time: Duration) {
        guard let previous = last else {
            last = (time, done)
            return
        }
        let elapsed = Self.seconds(time - previous.time)
        guard elapsed > 0 else { return }
        guard done >= previous.done else {
            last = (time, done)
            bytesPerSecond = nil
            return
        }
        let instant = Double(done - previous.done) / elapsed
        if let rate = bytesPerSecond {
            let weight = 1 - exp(-elapsed / max(Self.seconds(timeConstant), 1e-9))
            bytesPerSecond = rate + weight * (instant - rate)
        } else {
            bytesPerSecond = instant
        }
        last = (time, done)
    }

    /// Time left to reach `total` at the smoothed rate: zero when done, nil when the rate is unknown or zero.
    public func remaining(total: Int64) -> Duration? {
        let done = last?.done ?? 0
        if done >= total { return .zero }
        guard let rate = bytesPerSecond, rate > 0 else { return nil }
        let seconds = Double(total - done) / rate
        guard seconds < 1e9 else { return nil }
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    public static func == (lhs: ETAEstimator, rhs: ETAEstimator) -> Bool {
        lhs.timeConstant == rhs.timeConstant && lhs.bytesPerSecond == rhs.bytesPerSecond
            && lhs.last?.time == rhs.last?.time && lhs.last?.done == rhs.last?.done
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// One estimator per named item (a cluster, the whole rollout), for live views.
public struct ETATracker: Sendable {
    private var estimators: [String: ETAEstimator] = [:]
    private let timeConstant: Duration

    /// A tracker whose estimators use `timeConstant`.
    public init(timeConstant: Duration = .seconds(5)) {
        self.timeConstant = timeConstant
    }

    /// Records a sample for `name` and returns its current estimate (nil while unknown).
    public mutating func observe(_ name: String, done: Int64, total: Int64, at time: Duration) -> Duration? {
        var estimator = estimators[name] ?? ETAEstimator(timeConstant: timeConstant)
        estimator.observe(done: done, at: time)
        estimators[name] = estimator
        return estimator.remaining(total: total)
    }
}
