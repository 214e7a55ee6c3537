import Synchronization

/// A count that only goes up (one atomic; safe and cheap from any thread).
public final class Counter: Sendable {
    private let count = Atomic<UInt64>(0)

    public init() {}

    public func add(_ amount: UInt64 = 1) {
        count.add(amount, ordering: .relaxed)
    }

    public var value: UInt64 { count.load(ordering: .relaxed) }
}

/// Counters by label values (one series per distinct combination).
///
/// The number of series is capped: label values past the cap are counted under `other` in
/// every label, so a caller that labels by something unbounded cannot grow the scrape (or the
/// process) without end. Callers label only by bounded sets (methods, codes, releases).
public final class LabeledCounter: Sendable {
    public let labelNames: [String]
    public let maxSeries: Int
    private let values = Mutex<[[String]: UInt64]>([:])

    public init(labels: [String], maxSeries: Int = 1000) {
        precondition(labels.allSatisfy(ExpositionWriter.isValidLabelName), "invalid label names \(labels)")
        self.labelNames = labels
        self.maxSeries = max(1, maxSeries)
    }

    public func add(_ amount: UInt64 = 1, _ labels: [String]) {
        precondition(labels.count == labelNames.count, "\(labels.count) label values for the labels \(labelNames)")
        values.withLock { values in
            if values[labels] == nil, values.count >= maxSeries {
                values[Array(repeating: "other", count: labelNames.count), default: 0] += amount
            } else {
                values[labels, default: 0] += amount
            }
        }
    }

    public func add(_ amount: UInt64 = 1, _ labels: String...) {
        add(amount, labels)
    }

    /// The count of one series (0 when it was never counted).
    public func value(_ labels: String...) -> UInt64 {
        values.withLock { $0[labels] ?? 0 }
    }

    /// Every series, sorted by label values (a stable scrape).
    public var snapshot: [(labels: [String], value: UInt64)] {
        values.withLock { $0.map { (labels: $0.key, value: $0.value) } }.sorted { $0.labels.lexicographicallyPrecedes($1.labels) }
    }

    /// The sum over every series.
    public var total: UInt64 { values.withLock { $0.values.reduce(0, +) } }
}

/// Observations (durations, sizes) counted into fixed buckets, by label values, with their sum.
public final class LabeledHistogram: Sendable {
    public let labelNames: [String]
    /// Upper bounds, ascending; `+Inf` is implied.
    public let bounds: [Double]
    public let maxSeries: Int

    /// One series as the writer needs it: counts per bucket (not cumulative), total, sum.
    public struct Series: Sendable {
        public var labels: [String]
        public var counts: [UInt64]
        public var count: UInt64
        public var sum: Double
    }

    private let series = Mutex<[[String]: Series]>([:])

    /// Latency buckets from 0.5 ms to 10 s, for calls and transactions.
    public static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    public init(labels: [String], bounds: [Double] = LabeledHistogram.latencyBuckets, maxSeries: Int = 1000) {
        precondition(labels.allSatisfy(ExpositionWriter.isValidLabelName) && !labels.contains("le"), "invalid label names \(labels)")
        precondition(!bounds.isEmpty && zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "bucket bounds must ascend")
        self.labelNames = labels
        self.bounds = bounds
        self.maxSeries = max(1, maxSeries)
    }

    public func observe(_ value: Double, _ labels: [String]) {
        precondition(labels.count == labelNames.count, "\(labels.count) label values for the labels \(labelNames)")
        // The first bucket whose bound holds the value; past the last bound only +Inf does.
        let bucket = bounds.firstIndex { value <= $0 }
        series.withLock { all in
            var key = labels
            if all[key] == nil, all.count >= maxSeries { key = Array(repeating: "other", count: labelNames.count) }
            var entry = all[key] ?? Series(labels: key, counts: Array(repeating: 0, count: bounds.count), count: 0, sum: 0)
            if let bucket { entry.counts[bucket] += 1 }
            entry.count += 1
            entry.sum += value
            all[key] = entry
        }
    }

    public func observe(_ value: Double, _ labels: String...) {
        observe(value, labels)
    }

    /// Every series, sorted by label values.
    public var snapshot: [Series] {
        series.withLock { Array($0.values) }.sorted { $0.labels.lexicographicallyPrecedes($1.labels) }
    }

    /// Observations in one series.
    public func count(_ labels: String...) -> UInt64 {
        series.withLock { $0[labels]?.count ?? 0 }
    }
}
