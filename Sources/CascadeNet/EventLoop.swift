#if canImport(Glibc)
import Glibc
#endif
import CCascadeShims
import Foundation
import Synchronization

/// One epoll instance and the thread that waits on it.
///
/// The loop thread waits for readiness, then resumes the tasks waiting for it or runs the
/// read callbacks registered for it (`whenReadable`), runs the jobs of tasks that prefer the
/// loop as their executor, and last the end-of-turn work (`beforeNextPoll`: a connection's
/// writes). Registrations use EPOLLONESHOT, re-armed only while someone waits, so an idle
/// connection costs no wake-ups. Tokens (not fds) identify registrations, so an
/// event for an fd that was closed and reused is never delivered to the new owner.
public final class EventLoop: Sendable {
    public enum Interest: Sendable { case readable, writable }

    public let name: String
    let epollFD: Int32
    let wakeFD: Int32
    let state = Mutex(LoopState())
    let exited = DispatchSemaphore(value: 0)
    /// pthread_self() of the loop thread, so work queued from it needs no wake-up.
    let loopThread = Atomic<UInt>(0)

    static let wakeToken: UInt64 = 0

    public init(name: String = "cascade-loop") throws(NetError) {
        // A peer that resets while we write must give EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        let epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw NetError.system("epoll_create1", errno: errno) }
        let wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else {
            let saved = errno
            close(epollFD)
            throw NetError.system("eventfd", errno: saved)
        }
        guard cascade_epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, EPOLLIN.rawValue, Self.wakeToken) == 0 else {
            let saved = errno
            close(wakeFD)
            close(epollFD)
            throw NetError.system("epoll_ctl(eventfd)", errno: saved)
        }
        self.name = name
        self.epollFD = epollFD
        self.wakeFD = wakeFD
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.start()
    }

    /// Stops the loop: every waiter and sleeper fails with `.shutdown`, then the thread exits.
    /// Idempotent; returns when the thread has exited.
    public func shutdown() {
        let first = state.withLock { state -> Bool in
            if state.stopping { return false }
            state.stopping = true
            return true
        }
        guard first else { return }
        precondition(Thread.current.name != name, "shutdown() must not be called on the loop's own thread")
        wake()
        exited.wait()
    }

    /// The fds are closed only here, when nothing can reach the loop any more, so a late
    /// `wake()` can never write into an fd number the kernel has handed to someone else.
    deinit {
        close(wakeFD)
        close(epollFD)
    }

    /// Interrupts `epoll_wait` (from any thread).
    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: - Registrations

    /// Adds `fd` to the loop; returns the token that names it.
    func register(fd: Int32) throws(NetError) -> UInt64 {
        let result = state.withLock { state -> Result<UInt64, NetError> in
            if state.stopping { return .failure(NetError(.shutdown, "the event loop \(name) is shut down")) }
            let token = state.nextToken
            state.nextToken += 1
            // Disarmed until someone waits: EPOLLONESHOT with an empty mask.
            guard cascade_epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, EPOLLONESHOT.rawValue, token) == 0 else {
                return .failure(NetError.system("epoll_ctl(ADD)", errno: errno))
            }
            state.registrations[token] = Registration(fd: fd)
            return .success(token)
        }
        return try result.get()
    }

    /// Removes a registration; anyone waiting on it fails with `.closed`. Call before closing the fd.
    func deregister(token: UInt64) {
        var orphan: ReadinessCallback?
        let waiters = state.withLock { state -> [Waiter] in
            guard let registration = state.registrations.removeValue(forKey: token) else { return [] }
            _ = cascade_epoll_ctl(epollFD, EPOLL_CTL_DEL, registration.fd, 0, token)
            // A read callback learns on the loop thread, never inside whoever closed the socket
            // (unless the loop is stopping, when nothing else would ever tell it).
            if let callback = registration.readCallback {
                if state.stopping { orphan = callback } else { state.callbacks.append((callback, false)) }
            }
            return Array(registration.readers.values) + Array(registration.writers.values)
        }
        if let orphan { orphan(false) } else if !isLoopThread { wake() }
        for waiter in waiters {
            waiter.resume(throwing: NetError(.closed, "the socket was closed while waiting"))
        }
    }

    /// Suspends until the fd behind `token` is ready for `interest` (or has an error or hang-up).
    /// Throws `CancellationError` if the task is cancelled, `.closed` if the registration goes away.
    func wait(token: UInt64, for interest: Interest) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: Waiter) in
                let failure = state.withLock { state -> (any Error)? in
                    if state.stopping { return NetError(.shutdown, "the event loop \(name) is shut down") }
                    guard var registration = state.registrations[token] else {
                        return NetError(.closed, "the socket was closed")
                    }
                    // Checked under the lock: a cancel that ran before we stored the waiter is seen here.
                    if Task.isCancelled { return CancellationError() }
                    switch interest {
                    case .readable: registration.readers[id] = continuation
                    case .writable: registration.writers[id] = continuation
                    }
                    state.registrations[token] = registration
                    // On the loop thread the loop re-arms before it next polls, after this
                    // turn's writes: the epoll_ctl then costs nothing on a call's round trip.
                    if isLoopThread {
                        state.unarmed.append(token)
                        return nil
                    }
                    guard arm(registration, token: token) else {
                        let error = NetError.system("epoll_ctl(MOD)", errno: errno)
                        // Failed here, so it must not stay parked to be resumed a second time.
                        switch interest {
                        case .readable: registration.readers[id] = nil
                        case .writable: registration.writers[id] = nil
                        }
                        state.registrations[token] = registration
                        return error
                    }
                    return nil
                }
                if let failure { continuation.resume(throwing: failure) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard var registration = state.registrations[token] else { return nil }
                let taken = registration.readers.removeValue(forKey: id) ?? registration.writers.removeValue(forKey: id)
                state.registrations[token] = registration
                return taken
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Re-arms the one-shot registration with what its waiters want. Called with the lock held.
    func arm(_ registration: Registration, token: UInt64) -> Bool {
        var mask = EPOLLONESHOT.rawValue
        if registration.wantsRead { mask |= EPOLLIN.rawValue | EPOLLRDHUP.rawValue }
        if !registration.writers.isEmpty { mask |= EPOLLOUT.rawValue }
        return cascade_epoll_ctl(epollFD, EPOLL_CTL_MOD, registration.fd, mask, token) == 0
    }
}

typealias Waiter = UnsafeContinuation<Void, any Error>

/// Called on the loop thread: true when the fd is readable (or has an error or hang-up), false
/// when it never will be (the registration was removed or the loop stopped).
public typealias ReadinessCallback = @Sendable (_ ready: Bool) -> Void

struct Registration {
    let fd: Int32
    var readers: [UInt64: Waiter] = [:]
    var writers: [UInt64: Waiter] = [:]
    /// A one-shot read callback (`whenReadable`), run inline by the loop instead of resuming a task.
    var readCallback: ReadinessCallback?

    var wantsRead: Bool { !readers.isEmpty || readCallback != nil }
    var isWaitedOn: Bool { wantsRead || !writers.isEmpty }
}

struct LoopState: ~Copyable {
    var registrations: [UInt64: Registration] = [:]
    var nextToken: UInt64 = 1
    var nextWaiterID: UInt64 = 0
    var timers = TimerQueue()
    var stopping = false
    /// Tasks that prefer this loop as their executor, waiting to run on its thread.
    var jobs: [UnownedJob] = []
    /// The loop thread is done: jobs go to the global pool instead of `jobs`.
    var jobsHandedOff = false
    /// Registrations given a waiter on the loop thread, armed just before the next poll.
    var unarmed: [UInt64] = []
    /// Read callbacks due to run on the loop thread at the start of the next turn.
    var callbacks: [(ReadinessCallback, Bool)] = []
    /// Work to run on the loop thread after this turn's jobs, before it polls again.
    var beforePoll: [@Sendable () -> Void] = []
}
