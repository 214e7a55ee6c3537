import Foundation
import Synchronization

/// A fixed set of event loops, one per core by default; sockets are spread round-robin.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let cursor = Atomic<Int>(0)

    /// `loopCount` defaults to the number of active cores.
    public init(loopCount: Int? = nil, name: String = "cascade-loop") throws(NetError) {
        var loops: [EventLoop] = []
        for index in 0..<max(1, loopCount ?? ProcessInfo.processInfo.activeProcessorCount) {
            loops.append(try EventLoop(name: "\(name)-\(index)"))
        }
        self.loops = loops
    }

    /// The process-wide group, created on first use and never shut down.
    public static let shared: EventLoopGroup = {
        do {
            return try EventLoopGroup()
        } catch {
            fatalError("cannot start the event loops: \(error)")
        }
    }()

    public func next() -> EventLoop {
        let index = cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        return loops[index % loops.count]
    }

    public func shutdown() {
        for loop in loops { loop.shutdown() }
    }
}
