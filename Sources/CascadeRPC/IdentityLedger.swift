import CascadeNet
import Synchronization

/// What each peer identity holds on one server, across all its connections: connections and
/// active streams, each capped (rpc.md §15.1). A certificate is one principal, so opening
/// more connections buys a peer no more of the server.
final class IdentityLedger: Sendable {
    struct Usage {
        var connections = 0
        var streams = 0
    }

    let maxConnections: Int
    let maxStreams: Int
    private let usage = Mutex<[PeerIdentity: Usage]>([:])

    init(maxConnections: Int, maxStreams: Int) {
        self.maxConnections = maxConnections
        self.maxStreams = maxStreams
    }

    /// Counts a new connection of `peer`; nil (and nothing counted) when it would exceed the cap.
    func openConnection(_ peer: PeerIdentity) -> IdentitySlot? {
        let admitted = usage.withLock { usage -> Bool in
            var entry = usage[peer, default: Usage()]
            guard entry.connections < maxConnections else { return false }
            entry.connections += 1
            usage[peer] = entry
            return true
        }
        return admitted ? IdentitySlot(ledger: self, peer: peer) : nil
    }

    fileprivate func closeConnection(_ peer: PeerIdentity) {
        usage.withLock { usage in
            guard var entry = usage[peer] else { return }
            entry.connections -= 1
            // An identity with nothing open is forgotten: the table holds only live peers.
            if entry.connections <= 0 && entry.streams <= 0 { usage[peer] = nil } else { usage[peer] = entry }
        }
    }

    fileprivate func acquireStream(_ peer: PeerIdentity) -> Bool {
        usage.withLock { usage in
            guard var entry = usage[peer], entry.streams < maxStreams else { return false }
            entry.streams += 1
            usage[peer] = entry
            return true
        }
    }

    fileprivate func releaseStream(_ peer: PeerIdentity) {
        usage.withLock { usage in
            guard var entry = usage[peer] else { return }
            entry.streams -= 1
            if entry.connections <= 0 && entry.streams <= 0 { usage[peer] = nil } else { usage[peer] = entry }
        }
    }

    /// Connections and active streams `peer` holds now.
    func usage(of peer: PeerIdentity) -> (connections: Int, streams: Int) {
        usage.withLock { usage in usage[peer].map { ($0.connections, $0.streams) } ?? (0, 0) }
    }
}

/// One admitted connection's handle on the ledger. Streams are acquired under the
/// connection's lock and released when their handler's slot is freed.
final class IdentitySlot: Sendable {
    let ledger: IdentityLedger
    let peer: PeerIdentity
    private let closed = Atomic<Bool>(false)

    fileprivate init(ledger: IdentityLedger, peer: PeerIdentity) {
        self.ledger = ledger
        self.peer = peer
    }

    func acquireStream() -> Bool { ledger.acquireStream(peer) }
    func releaseStream() { ledger.releaseStream(peer) }

    /// Gives the connection back; only the first call counts.
    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        ledger.closeConnection(peer)
    }
}
