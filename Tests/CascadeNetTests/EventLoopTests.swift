@testable import CascadeNet
import CascadeTestSupport
import Synchronization
import Testing

@Suite("Event loop")
struct EventLoopTests {
    @Test("timers fire in deadline order, and a cancelled one never fires")
    func timerOrder() async throws {
        let loop = try EventLoop(name: "timer-test")
        defer { loop.shutdown() }
        let fired = Recorder()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            // Cancelled right away, and due after the others: descheduling cannot make it fire.
            let cancelled = loop.schedule(after: .milliseconds(35)) { fired.append(99) }
            #expect(loop.cancel(cancelled))
            loop.schedule(after: .milliseconds(30)) { fired.append(3) }
            loop.schedule(after: .milliseconds(10)) { fired.append(1) }
            loop.schedule(after: .milliseconds(20)) { fired.append(2) }
            loop.schedule(after: .milliseconds(60)) { done.resume() }
        }
        #expect(fired.values == [1, 2, 3])
    }

    @Test("sleep returns after its delay and throws CancellationError when cancelled")
    func sleepAndCancel() async throws {
        let loop = try EventLoop(name: "sleep-test")
        defer { loop.shutdown() }
        let start = MonotonicTime.now()
        try await loop.sleep(for: .milliseconds(20))  // the sleep under test: it must last until its deadline
        #expect(MonotonicTime.now().seconds(since: start) >= 0.019)

        let task = Task { try await loop.sleep(for: .seconds(60)) }  // cancelled long before its deadline
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    @Test("shutdown fails tasks still waiting on the loop")
    func shutdownFailsWaiters() async throws {
        let loop = try EventLoop(name: "shutdown-test")
        let sleeper = Task { try await loop.sleep(for: .seconds(60)) }  // ended by shutdown before its deadline
        // The sleeper must be registered before shutdown for the test to mean anything.
        _ = try await waitUntilTimers(loop, count: 1)
        loop.shutdown()
        let error = await #expect(throws: NetError.self) { try await sleeper.value }
        #expect(error?.code == .shutdown)
    }

    @Test("a task that prefers a loop still finishes when it is resumed after the loop stopped")
    func resumedAfterShutdown() async throws {
        let loop = try EventLoop(name: "stopped-executor-test")
        let parked = Mutex<CheckedContinuation<Int, Never>?>(nil)
        let task = Task(executorPreference: loop) {
            let value = await withCheckedContinuation { continuation in
                parked.withLock { $0 = continuation }
            }
            return value + 1
        }
        // Parked on the loop before it stops, resumed after: its job cannot run on the loop.
        _ = try await waitUntil(within: .seconds(10), "the task to park") { parked.withLock { $0 == nil ? nil : true } }
        loop.shutdown()
        parked.withLock { $0?.resume(returning: 41) }
        // Without the hand-off to the global pool the task never finishes: bounded wait.
        let finished = Mutex<Int?>(nil)
        Task {
            let value = await task.value
            finished.withLock { $0 = value }
        }
        let value = try await waitUntil(within: .seconds(10), "the resumed task to finish") { finished.withLock { $0 } }
        #expect(value == 42)
    }

    private func waitUntilTimers(_ loop: EventLoop, count: Int) async throws -> Bool {
        for _ in 0..<2000 {
            if loop.pendingTimerCount >= count { return true }
            await Task.yield()
        }
        throw CancellationError()
    }

    @Test("cancelled timers do not pile up in the heap (one deadline timer per call)")
    func timerCompaction() {
        var queue = TimerQueue()
        let now = MonotonicTime.now()
        for _ in 0..<100_000 {
            let id = queue.add(deadline: now + .seconds(30), action: .callback {}).id
            _ = queue.cancel(id: id)
        }
        #expect(queue.count == 0)
        #expect(queue.heapCount <= 65)
    }

    @Test("negative and huge durations neither trap nor wrap around")
    func durations() {
        let now = MonotonicTime.now()
        #expect(now + .milliseconds(-500) == now)
        #expect(now + .seconds(-3) == now)
        #expect((now + .seconds(Int64.max)).nanoseconds == .max)
    }

    @Test("the timer queue pops due timers earliest first and skips cancelled ones")
    func timerQueue() {
        var queue = TimerQueue()
        let base = MonotonicTime(nanoseconds: 1_000_000_000)
        var ids: [UInt64] = []
        for offset in [50, 10, 40, 20, 30] {
            let offsetNanoseconds = UInt64(offset) * 1_000_000
            ids.append(queue.add(deadline: MonotonicTime(nanoseconds: base.nanoseconds + offsetNanoseconds), action: .callback {}).id)
        }
        #expect(queue.cancel(id: ids[3]) != nil)
        #expect(queue.millisecondsUntilNext(from: base) == 10)
        #expect(queue.popDue(now: MonotonicTime(nanoseconds: base.nanoseconds + 35_000_000)).count == 2)
        #expect(queue.millisecondsUntilNext(from: base) == 40)
        #expect(queue.count == 2)
    }
}

/// Values appended from loop-thread callbacks. A class, because the compiler handles a
/// non-copyable `Mutex` local in an async test badly.
final class Recorder: Sendable {
    private let storage = Mutex<[Int]>([])
    func append(_ value: Int) { storage.withLock { $0.append(value) } }
    var values: [Int] { storage.withLock { $0 } }
}
