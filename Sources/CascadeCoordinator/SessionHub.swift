import CascadeAPI
import Synchronization

/// The agents with an open `Session`, and a way to push instructions to each. A newer session
/// from the same agent replaces the older one (a reconnect can overlap the old session's end).
final class SessionHub: Sendable {
    private struct Link {
        let token: UInt64
        let continuation: AsyncStream<Instruction>.Continuation
    }

    private struct State {
        var links: [String: Link] = [:]
        var nextToken: UInt64 = 0
        /// Sessions a newer one from the same agent replaced, until they end (services.md §3.2:
        /// they end with ABORTED).
        var replaced: Set<UInt64> = []
    }

    private let state = Mutex(State())

    /// Registers a session; instructions sent to `agentID` come out of the returned stream.
    func attach(_ agentID: String) -> (token: UInt64, instructions: AsyncStream<Instruction>) {
        // Instructions are level-triggered (the engine re-sends what still matters), so a slow
        // reader loses old ones instead of growing this buffer.
        let (stream, continuation) = AsyncStream<Instruction>.makeStream(bufferingPolicy: .bufferingNewest(64))
        // The token is taken under the same lock that stores the link: a racing attach or
        // detach of the same agent may replace or remove the link right after (session churn).
        let (token, replaced) = state.withLock { state -> (UInt64, Link?) in
            state.nextToken += 1
            let old = state.links[agentID]
            state.links[agentID] = Link(token: state.nextToken, continuation: continuation)
            if let old { state.replaced.insert(old.token) }
            return (state.nextToken, old)
        }
        replaced?.continuation.finish()
        return (token, stream)
    }

    /// Whether a newer session of the same agent replaced session `token` (its instruction
    /// stream then ends); false once that session has detached.
    func wasReplaced(_ token: UInt64) -> Bool {
        state.withLock { $0.replaced.contains(token) }
    }

    /// Removes the session if it is still the agent's current one; true when it was.
    @discardableResult
    func detach(_ agentID: String, token: UInt64) -> Bool {
        let link = state.withLock { state -> Link? in
            state.replaced.remove(token)
            guard let link = state.links[agentID], link.token == token else { return nil }
            state.links[agentID] = nil
            return link
        }
        link?.continuation.finish()
        return link != nil
    }

    /// Queues an instruction for a connected agent; false when it has no session.
    @discardableResult
    func send(_ instruction: Instruction, to agentID: String) -> Bool {
        guard let link = state.withLock({ $0.links[agentID] }) else { return false }
        if case .terminated = link.continuation.yield(instruction) { return false }
        return true
    }

    func isConnected(_ agentID: String) -> Bool {
        state.withLock { $0.links[agentID] != nil }
    }

    var connected: Set<String> {
        state.withLock { Set($0.links.keys) }
    }

    /// Ends every session (shutdown).
    func closeAll() {
        let links = state.withLock { state -> [Link] in
            let links = Array(state.links.values)
            state.links = [:]
            return links
        }
        for link in links { link.continuation.finish() }
    }
}
