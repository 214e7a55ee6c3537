import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts `binary` the way a service manager would start a daemon that may outlive its parent:
/// in a process group of its own (so a test can SIGKILL everything it restarted, whatever
/// restarted whom), stdin from /dev/null, stdout and stderr appended to `logFile`. The test
/// runner's fault-injection variable is not passed on unless `environment` sets it.
/// Returns the pid, which is also the new group's id.
public func spawnInOwnGroup(_ binary: String, _ arguments: [String], logFile: String,
                            environment extra: [String: String] = [:]) throws -> Int32 {
    var environment = ProcessInfo.processInfo.environment
    environment.removeValue(forKey: "CASCADE_FAULT_POINT")
    environment.merge(extra) { $1 }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setpgroup(&attributes, 0)
    // A daemon starts with no signal blocked and SIGTERM/SIGINT at their defaults, as under a
    // service manager; the test runner's own signal state (inherited across exec otherwise)
    // made every stop wait out its grace period before the SIGKILL.
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGTERM)
    sigaddset(&defaults, SIGINT)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid: pid_t = 0
    let result = posix_spawn(&pid, binary, &actions, &attributes, argv, envp)
    guard result == 0 else { throw TestFailure("cannot start \(binary): \(String(cString: strerror(result)))") }
    return pid
}
