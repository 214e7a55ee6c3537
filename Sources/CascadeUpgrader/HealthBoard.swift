import Synchronization

/// Health reports the main program sends the upgrader: pid → version. A switch waits for
/// its new pid to appear here.
public final class HealthBoard: Sendable {
    private let reports = Mutex<[Int32: String]>([:])

    public init() {}

    public func report(pid: Int32, version: String) {
        reports.withLock { $0[pid] = version }
    }

    public func isHealthy(pid: Int32, version: String) -> Bool {
        reports.withLock { $0[pid] == version }
    }
}
