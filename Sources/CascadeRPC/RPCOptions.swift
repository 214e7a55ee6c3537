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

    public init() {}
}
