import CascadeAPI


/// How idle this machine is: CPU idle from /proc/stat deltas, memory idle as
/// MemAvailable / MemTotal. Sampled every few seconds; the latest sample is what reports carry.
final class IdleSampler: Sendable {
    private struct CPUTimes: Sendable {
        var idle: UInt64
        var total: UInt64
    }

    private let override: IdleRatios?
    private let latest: Locked<IdleRatios>
    private let previous = Locked<CPUTimes?>(nil)

    init(override: IdleRatios?) {
        self.override = override
        latest = Locked(override ?? IdleRatios(cpuPPM: 0, memoryPPM: 0))
        if override == nil { sample() }
    }

    var current: IdleRatios { override ?? latest.value }

    /// Samples until cancelled.
    func run(every interval: Duration) async {
        guard override == nil else { return }
        while !Task.isCancelled {
            await pause(interval)
            sample()
        }
    }

    func sample() {
        guard override == nil else { return }
        let times = Self.readCPUTimes()
        let cpu: Double? = previous.withLock { previous in
            defer { previous = times }
            guard let times, let before = previous, times.total > before.total else { return nil }
            return Double(times.idle &- before.idle) / Double(times.total - before.total)
        }
        let memory = Self.readMemoryIdle()
        latest.withLock { ratios in
            // The first sample has no delta yet: keep the CPU ratio at its last value.
            ratios = IdleRatios(cpu: cpu ?? ratios.cpu, memory: memory ?? ratios.memory)
        }
    }

    /// The aggregate "cpu" line: idle + iowait count as idle.
    private static func readCPUTimes() -> CPUTimes? {
        guard let text = readSmallFile("/proc/stat"),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return nil }
        let values = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard values.count >= 5 else { return nil }
        let total = values.prefix(8).reduce(0, &+)
        return CPUTimes(idle: values[3] &+ values[4], total: total)
    }

    static func parseMemoryIdle(_ text: String) -> Double? {
        var total: Double?, available: Double?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let value = Double(parts[1]) else { continue }
            if parts[0] == "MemTotal:" { total = value }
            if parts[0] == "MemAvailable:" { available = value }
        }
        guard let total, let available, total > 0 else { return nil }
        return available / total
    }

    private static func readMemoryIdle() -> Double? {
        guard let text = readSmallFile("/proc/meminfo") else { return nil }
        return parseMemoryIdle(text)
    }
}
