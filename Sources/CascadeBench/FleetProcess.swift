import CascadeNet
import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Raises the soft open-file limit to the hard one: 1,000 agents hold ~6 descriptors each and
/// 10,000 sessions one each (plus the coordinator child, which inherits the raised limit).
/// Returns the soft limit now in force.
func raiseFileLimit() -> Int {
    var limit = rlimit()
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    guard getrlimit(resource, &limit) == 0 else { return -1 }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(resource, &limit)
        _ = getrlimit(resource, &limit)
    }
    return Int(limit.rlim_cur)
}

/// What /proc says about a process: memory, CPU time and bytes written by syscalls.
struct ProcSample: Sendable {
    var rssKiB = 0
    /// Peak resident set (VmHWM) since the process started.
    var hwmKiB = 0
    var cpuSeconds = 0.0
    /// Bytes passed to write/send syscalls (sockets and files alike).
    var wchar: UInt64 = 0

    static func read(_ pid: Int32) -> ProcSample {
        var sample = ProcSample()
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard parts.count >= 2, let value = Int(parts[1]) else { continue }
                if parts[0] == "VmRSS:" { sample.rssKiB = value }
                if parts[0] == "VmHWM:" { sample.hwmKiB = value }
            }
        }
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) {
                sample.cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        if let io = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) {
            for line in io.split(separator: "\n") where line.hasPrefix("wchar:") {
                sample.wchar = UInt64(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return sample
    }

    static var own: ProcSample { read(getpid()) }
}

/// TCP bytes sent by the sockets listening-side on `port` (the coordinator's), summed from
/// `ss -ti` (the kernel's per-socket tcpi_bytes_sent): the coordinator's socket egress,
/// independent of what it writes to its database. Nil when `ss` is missing.
func socketBytesSent(fromPort port: UInt16) -> (bytes: UInt64, sockets: Int)? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/ss")
    process.arguments = ["-tinH", "state", "established", "( sport = :\(port) )"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    var total: UInt64 = 0, sockets = 0
    for token in String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
    where token.hasPrefix("bytes_sent:") {
        total += UInt64(token.dropFirst("bytes_sent:".count)) ?? 0
        sockets += 1
    }
    return (total, sockets)
}

/// Child processes this benchmark started, killed on SIGINT/SIGTERM so that a timed-out or
/// interrupted run never leaves a coordinator behind.
final class ChildRegistry: Sendable {
    static let shared = ChildRegistry()
    private let pids = Mutex<Set<Int32>>([])
    private let sources = Mutex<[any DispatchSourceSignal]>([])

    func add(_ pid: Int32) { pids.withLock { _ = $0.insert(pid) } }
    func remove(_ pid: Int32) { pids.withLock { _ = $0.remove(pid) } }

    /// Kills and reaps every child still registered (the end of a run, whatever happened).
    func killAll() {
        for pid in pids.withLock({ $0 }) {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            remove(pid)
        }
    }

    /// Installs the handlers once: kill every child, then exit 128 + signal.
    func installSignalHandlers() {
        sources.withLock { sources in
            guard sources.isEmpty else { return }
            for number in [SIGINT, SIGTERM] {
                Foundation.signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    for pid in self.pids.withLock({ $0 }) {
                        kill(pid, SIGKILL)
                        var status: Int32 = 0
                        waitpid(pid, &status, 0)
                    }
                    emitLine("cascade-bench: signal \(number), stopped the children", to: 2)
                    exit(128 + number)
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}

/// The real `cascade-coordinator` as a child process, its output in a log file.
final class CoordinatorProcess: Sendable {
    let pid: Int32
    let address: SocketAddress
    let logFile: String

    private init(pid: Int32, address: SocketAddress, logFile: String) {
        self.pid = pid
        self.address = address
        self.logFile = logFile
    }

    /// Starts `binary` with `arguments` and waits (up to 20 s) for its
    /// "cascade-coordinator: listening on ADDR, data in DIR" line.
    static func start(binary: String, arguments: [String], logFile: String) async throws -> CoordinatorProcess {
        let pid = try spawn(binary, arguments, output: logFile)
        ChildRegistry.shared.add(pid)
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            if let line = log.split(separator: "\n").first(where: { $0.contains("listening on ") }),
               let tail = line.split(separator: "listening on ").last,
               let text = tail.split(separator: ",").first,
               let address = try? SocketAddress(parsing: String(text)) {
                return CoordinatorProcess(pid: pid, address: address, logFile: logFile)
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                ChildRegistry.shared.remove(pid)
                throw BenchError("the coordinator exited before listening (status \(status)): \(log.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(20))  // polling its log, bounded by the deadline
        }
        kill(pid, SIGKILL)
        ChildRegistry.shared.remove(pid)
        throw BenchError("the coordinator printed no 'listening on' line within 20 s; see \(logFile)")
    }

    var sample: ProcSample { ProcSample.read(pid) }

    /// SIGTERM (graceful drain) with up to `grace` to exit, then SIGKILL; reaps the child.
    func stop(grace: Duration = .seconds(5)) async {
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        var status: Int32 = 0
        while ContinuousClock.now < deadline {
            if waitpid(pid, &status, WNOHANG) == pid {
                ChildRegistry.shared.remove(pid)
                return
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        killNow()
    }

    /// SIGKILL, as a crash would; reaps the child.
    func killNow() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        ChildRegistry.shared.remove(pid)
    }

    private static func spawn(_ path: String, _ arguments: [String], output: String) throws -> Int32 {
        let fd = open(output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BenchError("cannot open \(output): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fd, 1)
        posix_spawn_file_actions_adddup2(&actions, fd, 2)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard result == 0 else { throw BenchError("cannot start \(path): \(String(cString: strerror(result)))") }
        return pid
    }
}

/// The coordinator binary next to this one (both come from the same `swift build`).
func defaultCoordinatorBinary() -> String {
    let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("cascade-coordinator").path
}

func mib(_ kib: Int) -> String { format(Double(kib) / 1024) }
