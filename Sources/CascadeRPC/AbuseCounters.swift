import CascadeNet
import CascadeWire

/// Counts events in a sliding 10-second window; over the limit means abuse (rpc.md).
struct RateWindow {
    let limit: Int
    let what: String
    private var windowStart = MonotonicTime.now()
    private var count = 0

    init(limit: Int, what: String) {
        self.limit = limit
        self.what = what
    }

    mutating func hit(now: MonotonicTime = .now()) throws(WireError) {
        if now.seconds(since: windowStart) > 10 {
            windowStart = now
            count = 0
        }
        count += 1
        if count > limit {
            throw WireError(.abuse, code: .enhanceYourCalm, "more than \(limit) \(what) within 10 s")
        }
    }
}

/// The per-connection limits of rpc.md, "Abuse limits".
struct AbuseCounters {
    var pings = RateWindow(limit: 50, what: "PING frames")
    var settings = RateWindow(limit: 20, what: "SETTINGS frames")
    var resets = RateWindow(limit: 200, what: "reset streams")
    var emptyFrames = RateWindow(limit: 1000, what: "empty DATA or unknown frames")
    var tinyWindowUpdates = RateWindow(limit: 1000, what: "WINDOW_UPDATE frames under 1024 bytes")
}
