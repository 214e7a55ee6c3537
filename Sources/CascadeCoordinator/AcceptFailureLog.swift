import CascadeNet
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Logs failed accepts (the server retries them) at most once per `interval`, counting the
/// ones in between: out of descriptors, the accept loop fails every few milliseconds, and a
/// line each time would flood the log while saying nothing new.
final class AcceptFailureLog: Sendable {
    private let interval: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let write: @Sendable (String) -> Void
    private let state = Mutex<(last: ContinuousClock.Instant?, unreported: Int)>((nil, 0))

    init(
        interval: Duration = .seconds(10), now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        write: @escaping @Sendable (String) -> Void = { Logs.tls.error($0) }
    ) {
        self.interval = interval
        self.now = now
        self.write = write
    }

    func record(_ error: any Error) {
        let time = now()
        let earlier: Int? = state.withLock { state in
            if let last = state.last, time - last < interval {
                state.unreported += 1
                return nil
            }
            defer { state = (time, 0) }
            return state.unreported
        }
        guard let earlier else { return }
        write(Self.sentence(error, earlier: earlier))
    }

    static func sentence(_ error: any Error, earlier: Int) -> String {
        var text = "cannot accept connections: \(error)"
        switch (error as? NetError)?.errno {
        case EMFILE?: text += " (this process is out of file descriptors; its open-file limit is \(DescriptorLimit.current.map { "\($0)" } ?? "unknown"))"
        case ENFILE?: text += " (the system is out of file descriptors: fs.file-max)"
        default: break
        }
        if earlier > 0 { text += "; \(earlier) more since the last report" }
        return text + "; retrying"
    }
}
