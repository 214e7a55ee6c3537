import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starting and reaping child processes with posix_spawn. Children inherit the environment and
/// the process group; every descriptor this code opens is close-on-exec, so a child never
/// inherits a lock (which would make a dead parent look alive).
public enum Spawn {
    /// How a reaped child ended.
    public enum Exit: Sendable, Equatable, CustomStringConvertible {
        case code(Int32)
        case signal(Int32)

        public var description: String {
            switch self {
            case .code(let code): "exited with status \(code)"
            case .signal(let signal): "was killed by signal \(signal)"
            }
        }
    }

    /// Starts `path` with `arguments`; `standardInput`/`standardOutput` replace fd 0/1 when given.
    public static func start(
        _ path: String, _ arguments: [String], standardInput: Int32? = nil, standardOutput: Int32? = nil
    ) throws(InstallError) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let fd = standardInput { posix_spawn_file_actions_adddup2(&actions, fd, 0) }
        if let fd = standardOutput { posix_spawn_file_actions_adddup2(&actions, fd, 1) }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard result == 0 else {
            throw InstallError(.io, "cannot start \(path): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Reaps `pid` if it has exited; nil while it runs. A pid that is not our child counts as gone.
    public static func reap(_ pid: Int32) -> Exit? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == 0 { return nil }
            if result < 0 {
                if errno == EINTR { continue }
                return .code(-1)
            }
            return decode(status)
        }
    }

    /// Waits for `pid` to exit and reaps it.
    public static func wait(_ pid: Int32) -> Exit {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .code(-1) }
        }
        return decode(status)
    }

    private static func decode(_ status: Int32) -> Exit {
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot import.
        let signal = status & 0x7f
        return signal == 0 ? .code((status >> 8) & 0xff) : .signal(signal)
    }

    /// Runs `path` to completion with a deadline, returning its exit and standard output.
    /// A child that overruns is killed.
    public static func run(_ path: String, _ arguments: [String], deadline: Duration) throws(InstallError) -> (exit: Exit, output: String) {
        var pipeEnds: [Int32] = [0, 0]
        guard Posix.makePipe(&pipeEnds) == 0 else { throw InstallError(.io, "pipe failed: \(Posix.lastError)") }
        let pid: pid_t
        do throws(InstallError) {
            pid = try start(path, arguments, standardOutput: pipeEnds[1])
        } catch {
            close(pipeEnds[0]); close(pipeEnds[1])
            throw error
        }
        close(pipeEnds[1])
        defer { close(pipeEnds[0]) }
        _ = fcntl(pipeEnds[0], F_SETFL, fcntl(pipeEnds[0], F_GETFL) | O_NONBLOCK)
        let clock = ContinuousClock()
        let end = clock.now + deadline
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var poller = pollfd(fd: pipeEnds[0], events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, 50)
            let count = buffer.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if count > 0 && output.count < 65536 { output.append(contentsOf: buffer[0..<count]) }
            if let exit = reap(pid) {
                while output.count < 65536 {
                    let rest = buffer.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
                    if rest <= 0 { break }
                    output.append(contentsOf: buffer[0..<rest])
                }
                return (exit, String(decoding: output, as: UTF8.self))
            }
            if clock.now >= end {
                kill(pid, SIGKILL)
                _ = wait(pid)
                throw InstallError(.timeout, "\(path) did not finish within \(deadline)")
            }
        }
    }
}
