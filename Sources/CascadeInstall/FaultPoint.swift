#if canImport(Glibc)
import Glibc
#endif

/// Crash injection for tests, compiled into debug builds only. With CASCADE_FAULT_POINT set to
/// a point's name (or a comma-separated list), the process SIGKILLs itself on reaching that
/// point — once per root: a marker in the state directory keeps the repaired pair from dying
/// at the same point again.
public enum FaultPoint {
    public static func hit(_ name: String, layout: AgentLayout) {
        #if DEBUG
        guard let value = getenv("CASCADE_FAULT_POINT"),
              String(cString: value).split(separator: ",").contains(Substring(name))
        else { return }
        let marker = "\(layout.stateDirectory)/fault-\(name).fired"
        guard Posix.fileType(marker) == nil else { return }
        try? Posix.writeAtomically(marker, [])
        kill(getpid(), SIGKILL)
        #endif
    }
}

/// Misbehaviour for tests, debug builds only: a release whose `TEST_BEHAVIOR` file holds a
/// line "main=exit-at-start" (or "upgrader=never-healthy", ...) makes that program misbehave.
/// This is how tests build a bad 1.1 from the same binaries as a good one.
public enum TestBehavior: String, Sendable {
    /// Exit with status 1 right after start.
    case exitAtStart = "exit-at-start"
    /// Run, but never pass the health check.
    case neverHealthy = "never-healthy"
    /// Pass the health check only 6 s after start (a slow-starting release).
    case slowHealthy = "healthy-after-6s"

    /// Whether the running release asks `program` to misbehave this way.
    public static func active(_ behavior: TestBehavior, for program: Program) -> Bool {
        #if DEBUG
        guard let release = ReleaseCheck.runningReleaseDirectory(),
              let text = try? Posix.readText("\(release)/TEST_BEHAVIOR")
        else { return false }
        return text.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "\(program.rawValue)=\(behavior.rawValue)" }
        #else
        return false
        #endif
    }
}
