#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on CLOCK_MONOTONIC: what the event loop's timers are measured in.
public struct MonotonicTime: Comparable, Hashable, Sendable {
    public let nanoseconds: UInt64

    public init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    public static func now() -> MonotonicTime {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return MonotonicTime(nanoseconds: UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec))
    }

    public static func < (lhs: MonotonicTime, rhs: MonotonicTime) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    /// Saturates at the far future instead of wrapping around.
    public static func + (lhs: MonotonicTime, rhs: Duration) -> MonotonicTime {
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(rhs.nanosecondsClamped)
        return MonotonicTime(nanoseconds: overflow ? .max : sum)
    }

    /// Seconds elapsed since `earlier`, as a Double (for figures and logs).
    public func seconds(since earlier: MonotonicTime) -> Double {
        Double(nanoseconds &- earlier.nanoseconds) / 1e9
    }
}

extension Duration {
    /// Seconds as a Double (for comparing with `MonotonicTime.seconds(since:)`).
    public var inSeconds: Double { Double(nanosecondsClamped) / 1e9 }

    /// Whole nanoseconds, clamped to 0...UInt64.max.
    public var nanosecondsClamped: UInt64 {
        let (seconds, attoseconds) = components
        // Negative durations (a deadline already past) mean "now"; components round toward
        // zero, so -0.5 s is (0, -5e17) and both parts must be checked.
        if seconds < 0 || attoseconds < 0 { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        return whole &+ UInt64(attoseconds / 1_000_000_000)
    }
}
