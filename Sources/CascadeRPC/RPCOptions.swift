public import CascadeWire

/// Connection behaviour beyond the wire settings (rpc.md: keepalive, idle, drain).
public struct RPCOptions: Sendable {
    /// A client pings after this long without receiving any frame...
    public var keepaliveInterval: Duration = .seconds(30)
    /// ...and closes the connection if the ACK takes longer than this.
    public var keepaliveTimeout: Duration = .seconds(10)
    /// A server closes a connection with no calls for this long (GOAWAY NO_ERROR).
    public var idleTimeout: Duration = .seconds(600)
    /// How long a draining server lets calls in flight finish.
    public var drainTimeout: Duration = .seconds(30)
    /// A connection whose writes make no progress for this long (a peer that stopped
    /// reading the socket) is closed.
    public var writeStallTimeout: Duration = .seconds(60)
    /// The peer's preface and first SETTINGS must arrive within this (slowloris).
    public var settingsTimeout: Duration = .seconds(10)
    /// A call whose sender waits this long for the peer to open its window (a peer that
    /// never reads) is reset, when it has no earlier deadline.
    public var stalledWindowTimeout: Duration = .seconds(60)
    /// A blocked stream's clock restarts only after it has sent this many bytes since it began
    /// waiting (or finished its write): a trickle of tiny WINDOW_UPDATEs does not keep it alive.
    public var stalledWindowProgress = 64 * 1024
    /// A handler that waits for credit before producing a message (`StreamWriter.waitForWindow`)
    /// waits for a window of the message's size, capped at the larger of the peer's initial
    /// window and this: a peer that advertises a zero window must grant at least this much.
    public var creditFloor = 64 * 1024
    /// Server: connections one peer identity (certificate role and id) may hold at once; the
    /// next is answered with GOAWAY ENHANCE_YOUR_CALM.
    public var maxConnectionsPerIdentity = 8
    /// Server: calls one peer identity may have active at once over all its connections; the
    /// next is refused with RESET REFUSED_STREAM.
    public var maxStreamsPerIdentity = 100

    public init() {}
}

extension Settings {
    /// What Cascade's RPC endpoints advertise: frames of up to 1 MiB + 64 KiB, so a message
    /// carrying a 1 MiB release chunk travels in one frame and is handed over without being
    /// reassembled, and windows of 4 MiB per stream and 16 MiB per connection, so one stream
    /// keeps a loopback or LAN link busy while a slow reader still bounds what it buffers.
    public static var rpcDefaults: Settings {
        var settings = Settings()
        settings.maxFrameSize = 1024 * 1024 + 64 * 1024
        settings.initialStreamWindow = 4 * 1024 * 1024
        settings.initialConnectionWindow = 16 * 1024 * 1024
        return settings
    }
}
