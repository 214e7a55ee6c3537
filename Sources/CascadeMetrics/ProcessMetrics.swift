#if canImport(Glibc)
import Glibc
#endif

/// This process as the kernel sees it, read from /proc at each scrape, under the names every
/// Prometheus client library uses (`process_cpu_seconds_total`, ...), so the usual dashboards
/// work unchanged.
public struct ProcessSample: Sendable, Equatable {
    /// User + system CPU time.
    public var cpuSeconds: Double
    public var residentBytes: Double
    public var virtualBytes: Double
    public var openFileDescriptors: Double
    /// The soft RLIMIT_NOFILE.
    public var maxFileDescriptors: Double
    /// Seconds since 1970 when the process started (0 if unknown).
    public var startTimeSeconds: Double

    /// Reads /proc/self/stat, /proc/self/fd and /proc/stat; nil where /proc is not mounted.
    public static func current() -> ProcessSample? {
        guard let stat = readFile("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm)" the fields are space-separated; the comm may hold spaces and
        // parentheses, hence the last ")". Field 3 (state) is the first after it.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double {
            let index = number - 3
            guard index >= 0, index < fields.count else { return 0 }
            return Double(fields[index]) ?? 0
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        var sample = ProcessSample(
            cpuSeconds: ticks > 0 ? (field(14) + field(15)) / ticks : 0,
            residentBytes: field(24) * page, virtualBytes: field(23),
            openFileDescriptors: Double(openDescriptors() ?? 0), maxFileDescriptors: 0, startTimeSeconds: 0)
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { sample.maxFileDescriptors = Double(limit.rlim_cur) }
        if ticks > 0, let boot = bootTime() { sample.startTimeSeconds = boot + field(22) / ticks }
        return sample
    }

    /// The `process_*` families.
    public func write(to writer: inout ExpositionWriter) {
        writer.counter("process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", cpuSeconds)
        writer.gauge("process_resident_memory_bytes", help: "Resident memory size in bytes.", residentBytes)
        writer.gauge("process_virtual_memory_bytes", help: "Virtual memory size in bytes.", virtualBytes)
        writer.gauge("process_open_fds", help: "Number of open file descriptors.", openFileDescriptors)
        writer.gauge("process_max_fds", help: "Maximum number of open file descriptors.", maxFileDescriptors)
        writer.gauge("process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", startTimeSeconds)
    }

    /// Entries of /proc/self/fd, less the one the listing itself holds open.
    static func openDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { count += 1 }
        }
        return max(0, count - 1)
    }

    /// `btime` from /proc/stat: when the system booted, in seconds since 1970.
    static func bootTime() -> Double? {
        guard let text = readFile("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count).trimmingPrefix(" "))
        }
        return nil
    }

    /// A small /proc file, whole (their size reads as 0, so read until end of file).
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            bytes += buffer[0..<got]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
