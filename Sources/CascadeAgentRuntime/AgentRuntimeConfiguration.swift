public import CascadeAPI
public import CascadeCrypto
public import CascadeLog
public import CascadeNet
public import CascadeRPC

/// Everything an agent's fleet runtime needs. The agent's id is not here: it is the id in its
/// certificate, which the coordinator echoes in the `Assignment`.
public struct AgentRuntimeConfiguration: Sendable {
    /// The coordinator's RPC address.
    public var coordinatorAddress: SocketAddress
    /// The IP address this agent listens on for members and is grouped by ("127.0.1.5").
    public var bindAddress: String
    /// The port for `cascade.Leader`; 0 picks a free one (reported to the coordinator).
    public var memberPort: UInt16
    /// This agent's certificate, key and the fleet CA (used as client and as server).
    public var tls: TLSConfiguration
    /// The pinned release keys: nothing else's signature makes a release installable.
    public var releaseKeys: [Ed25519PublicKey]
    /// The program this agent installs releases of: a manifest with another `name` is refused.
    public var programName: String
    /// Where downloads in progress live (`<stateDirectory>/downloads`).
    public var stateDirectory: String
    public var mainVersion: String
    public var upgraderVersion: String
    public var hostname: String
    /// The agent's progress in a rollout it was part of before it restarted (e.g. healthy on the
    /// new version after the switch); sent with `Register` so nothing is done twice.
    public var resume: AgentProgress?
    /// Heartbeat interval until the coordinator says otherwise.
    public var defaultReportInterval: Duration
    /// Test-only: fixed idle ratios instead of sampling /proc, so tests decide the weights.
    public var idleOverride: IdleRatios?
    public var idleSampleInterval: Duration
    public var timeouts: Timeouts
    /// Between attempts to re-register, rejoin a leader or refetch.
    public var retryBackoff: Backoff
    /// Failed fetch attempts from the leader in a row before a member fetches from the coordinator.
    public var leaderFailuresBeforeCoordinator: Int
    /// A leader spreads the first instruction over up to this much time per member.
    public var startJitter: Duration
    /// Test-only fault switches.
    public var faults: FaultSwitches
    /// The upgrader's version as it is now (the main program upgrades it after its own
    /// switch, while the runtime runs); nil means `upgraderVersion` never changes.
    public var currentUpgraderVersion: (@Sendable () -> String)?
    /// Runtime events (progress, roles, refusals, faults) for observers and tests.
    public var onEvent: @Sendable (RuntimeEvent) -> Void
    /// Where the runtime logs (component "fleet"; the agent's id is a field of each line). The
    /// agent executable logs to its standard error; in-process peers default to nothing.
    public var logger: Logger
    /// Counters for `/metrics`; pass one instance to every runtime of a process.
    public var metrics = RuntimeMetrics()

    public struct Timeouts: Sendable {
        /// Unary calls (register, report fault, second instruction).
        public var call: Duration = .seconds(10)
        /// How long a leader's FetchChunks waits for its rollout's artifact to be known.
        public var artifactWait: Duration = .seconds(10)
        /// How long a stopping leader lets calls in flight finish.
        public var drain: Duration = .milliseconds(500)

        public init(call: Duration = .seconds(10), artifactWait: Duration = .seconds(10), drain: Duration = .milliseconds(500)) {
            self.call = call
            self.artifactWait = artifactWait
            self.drain = drain
        }
    }

    public struct FaultSwitches: Sendable {
        /// As a leader, flip a byte in these chunks when serving them (the leader's own copy
        /// stays verified): the "leader serves a corrupted chunk" fault test.
        public var corruptServedChunks: Set<UInt32>

        public init(corruptServedChunks: Set<UInt32> = []) {
            self.corruptServedChunks = corruptServedChunks
        }

        public static let none = FaultSwitches()
    }

    public init(
        coordinatorAddress: SocketAddress, bindAddress: String, memberPort: UInt16 = 0, tls: TLSConfiguration,
        releaseKeys: [Ed25519PublicKey], programName: String = "cascade-agent", stateDirectory: String, mainVersion: String, upgraderVersion: String,
        hostname: String = "", resume: AgentProgress? = nil, defaultReportInterval: Duration = .seconds(5),
        idleOverride: IdleRatios? = nil, idleSampleInterval: Duration = .seconds(5), timeouts: Timeouts = Timeouts(),
        retryBackoff: Backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(10)),
        leaderFailuresBeforeCoordinator: Int = 3, startJitter: Duration = .milliseconds(200),
        faults: FaultSwitches = .none, onEvent: @escaping @Sendable (RuntimeEvent) -> Void = { _ in },
        logger: Logger = Logger("fleet", output: .discarding)
    ) {
        self.coordinatorAddress = coordinatorAddress
        self.bindAddress = bindAddress
        self.memberPort = memberPort
        self.tls = tls
        self.releaseKeys = releaseKeys
        self.programName = programName
        self.stateDirectory = stateDirectory
        self.mainVersion = mainVersion
        self.upgraderVersion = upgraderVersion
        self.hostname = hostname
        self.resume = resume
        self.defaultReportInterval = defaultReportInterval
        self.idleOverride = idleOverride
        self.idleSampleInterval = idleSampleInterval
        self.timeouts = timeouts
        self.retryBackoff = retryBackoff
        self.leaderFailuresBeforeCoordinator = leaderFailuresBeforeCoordinator
        self.startJitter = startJitter
        self.faults = faults
        self.onEvent = onEvent
        self.logger = logger
    }
}

/// Something the runtime did that an observer may care about.
public enum RuntimeEvent: Sendable, Hashable {
    /// The agent's own rollout progress changed.
    case progress(AgentProgress)
    /// A new assignment was adopted.
    case assigned(role: AgentRole, leaderID: String, epoch: UInt64)
    /// Registering or holding the coordinator session failed (it is retried with backoff).
    case coordinatorLinkFailed(String)
    /// An instruction or assignment was refused (stale epoch, unverified release...).
    case refused(String)
    /// A bad chunk was discarded and reported.
    case faultReported(chunk: UInt32, sourceID: String)
    /// As a member: sent the second instruction to the leader.
    case secondInstructionSent(leaderID: String, rolloutID: UInt64)
    /// As a leader: accepted the second instruction from a member.
    case secondInstructionReceived(from: String, rolloutID: UInt64)
    /// As a leader: sent the first instruction to a member.
    case memberInstructed(String, rolloutID: UInt64)
}
