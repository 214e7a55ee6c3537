/// What a timer does when it fires: run a callback, or resume a sleeping task.
enum TimerAction {
    case callback(@Sendable () -> Void)
    case resume(Waiter)

    func fire() {
        switch self {
        case .callback(let body): body()
        case .resume(let waiter): waiter.resume()
        }
    }

    func fail(_ error: any Error) {
        if case .resume(let waiter) = self { waiter.resume(throwing: error) }
    }
}

/// A min-heap of deadlines. Cancelling removes the action; its heap entry is dropped lazily.
struct TimerQueue {
    private var heap: [(deadline: UInt64, id: UInt64)] = []
    private var actions: [UInt64: TimerAction] = [:]
    private var nextID: UInt64 = 0

    var count: Int { actions.count }

    /// Adds a timer; `isEarliest` says whether the loop must wake to shorten its wait.
    mutating func add(deadline: MonotonicTime, action: TimerAction) -> (id: UInt64, isEarliest: Bool) {
        nextID += 1
        let isEarliest = heap.first.map { deadline.nanoseconds < $0.deadline } ?? true
        actions[nextID] = action
        heap.append((deadline.nanoseconds, nextID))
        siftUp(heap.count - 1)
        return (nextID, isEarliest)
    }

    /// Cancels a timer. When most heap entries are dead (one deadline timer per call, most
    /// cancelled long before they are due), the heap is rebuilt so it stays within 2x live + 64.
    mutating func cancel(id: UInt64) -> TimerAction? {
        guard let action = actions.removeValue(forKey: id) else { return nil }
        if heap.count > 64 && heap.count > 2 * actions.count {
            heap.removeAll { actions[$0.id] == nil }
            for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
        }
        return action
    }

    /// Entries in the heap, live or not yet dropped (for tests).
    var heapCount: Int { heap.count }

    /// The epoll timeout until the next live timer: -1 for none, rounded up to whole milliseconds.
    mutating func millisecondsUntilNext(from now: MonotonicTime) -> Int32 {
        dropCancelledTop()
        guard let top = heap.first else { return -1 }
        if top.deadline <= now.nanoseconds { return 0 }
        let milliseconds = (top.deadline - now.nanoseconds + 999_999) / 1_000_000
        return Int32(min(milliseconds, UInt64(Int32.max)))
    }

    /// Removes and returns the actions of every timer due at `now`, earliest first.
    mutating func popDue(now: MonotonicTime) -> [TimerAction] {
        var due: [TimerAction] = []
        while let top = heap.first, top.deadline <= now.nanoseconds {
            removeTop()
            if let action = actions.removeValue(forKey: top.id) { due.append(action) }
        }
        return due
    }

    mutating func removeAll() -> [TimerAction] {
        let all = Array(actions.values)
        actions.removeAll()
        heap.removeAll()
        return all
    }

    private mutating func dropCancelledTop() {
        while let top = heap.first, actions[top.id] == nil { removeTop() }
    }

    private mutating func removeTop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        if !heap.isEmpty { siftDown(0) }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count && heap[right].deadline < heap[smallest].deadline { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
