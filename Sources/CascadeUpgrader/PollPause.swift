#if canImport(Glibc)
import Glibc
#endif

/// Waits without burning CPU between checks of a condition (the daemons' poll interval).
public func pollPause(_ interval: Duration) {
    let (seconds, attoseconds) = interval.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }  // poll interval, not a fixed wait
}
