public import CascadeNet
public import CascadeStore

/// Everything a coordinator needs to run. Every field but the paths has a default.
public struct CoordinatorConfiguration: Sendable {
    /// Holds `coordinator.sqlite3` (`CoordinatorStore.databaseFileName`), `blobs/` and
    /// `tls-ticket-keys` (created if missing, 0700).
    public var dataDirectory: String
    /// Where agents and operators connect. Default 0.0.0.0:7400.
    public var listenAddress: SocketAddress
    /// The coordinator's certificate (SAN `cascade://coordinator/<id>`), key and the fleet CA.
    public var tls: TLSConfiguration
    /// PEM files of the Ed25519 public keys whose signatures releases must carry.
    public var trustedKeyFiles: [String]
    /// Clustering, weights, liveness and per-state timeouts.
    public var store: StoreConfiguration
    /// How often agents report (sent to them in their assignment). Default 5 s.
    public var reportInterval: Duration
    /// How often the rollout engine re-evaluates active rollouts. Default 1 s.
    public var engineInterval: Duration
    /// How long an instruction may go unanswered before it is sent again. Default 15 s.
    public var resendInterval: Duration
    /// Distinct members of a leader's cluster that must report its bad chunks, within
    /// `faultWindow` and one rollout, before it is replaced. Default 2; one reporter suffices
    /// only while the leader's own session is down (services.md §3.1).
    public var faultReportersToReplace: Int
    /// How far back fault reports count. Default 10 minutes.
    public var faultWindow: Duration
    /// Which verified fact places an agent in its cluster. Default `.source`.
    public var placement: Placement
    /// The program the agents install (the manifests' `name`); a push of another is refused.
    public var programName = "cascade-agent"
    /// A running cluster with nothing in flight and no change for this long waits on an agent
    /// that will not act (gone, or a leader that withholds); those agents fail. Default 10 min.
    public var stallTimeout: Duration = .seconds(600)
    /// Where `/metrics` is served over plain HTTP (`--metrics-listen`); nil: not served.
    public var metricsAddress: SocketAddress?
    /// Where the status page and `/status.json` are served (`--status-listen`); nil: not served.
    /// The same address as `metricsAddress` makes one listener serve both.
    public var statusAddress: SocketAddress?

    /// Where the address that decides an agent's cluster comes from (never a message field).
    public enum Placement: String, Sendable, CaseIterable {
        /// The TCP source address of its connection; when its certificate has IP SANs, the
        /// source must be one of them.
        case source
        /// The IP SAN of its certificate (for agents behind NAT or a proxy).
        case certificate
    }

    public init(
        dataDirectory: String, tls: TLSConfiguration, trustedKeyFiles: [String],
        listenAddress: SocketAddress? = nil, store: StoreConfiguration = StoreConfiguration(),
        reportInterval: Duration = .seconds(5), engineInterval: Duration = .seconds(1),
        resendInterval: Duration = .seconds(15), faultReportersToReplace: Int = 2, faultWindow: Duration = .seconds(600),
        placement: Placement = .source
    ) {
        self.dataDirectory = dataDirectory
        self.tls = tls
        self.trustedKeyFiles = trustedKeyFiles
        // The literal is well formed, so parsing it cannot fail.
        self.listenAddress = listenAddress ?? (try! SocketAddress(ip: "0.0.0.0", port: 7400))
        self.store = store
        self.reportInterval = reportInterval
        self.engineInterval = engineInterval
        self.resendInterval = resendInterval
        self.faultReportersToReplace = max(1, faultReportersToReplace)
        self.faultWindow = faultWindow
        self.placement = placement
    }
}
