#if canImport(Glibc)
import Glibc
#endif

/// User + system CPU seconds this process has used so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// One result line, the same contract as the C baseline programs in Benchmarks/c.
func resultLine(bytes: Int, seconds: Double, cpu: Double, extra: String = "") -> String {
    let mbps = seconds > 0 ? Double(bytes) / 1e6 / seconds : 0
    let line = "result bytes=\(bytes) seconds=\(format(seconds)) cpu=\(format(cpu)) mbps=\(format(mbps))"
    return extra.isEmpty ? line : "\(line) \(extra)"
}

func format(_ value: Double) -> String {
    let scaled = (value * 1000).rounded() / 1000
    return "\(scaled)"
}

/// Writes a line to stdout at once (unbuffered), so a parent process reading it never waits.
public func emitLine(_ text: String, to fd: Int32 = 1) {
    let bytes = Array((text + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if written <= 0 { return }
        offset += written
    }
}
